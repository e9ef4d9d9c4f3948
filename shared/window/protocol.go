package window

// The window script's protocol: the Go side of window.lua's header, the one
// place the arguments callArgs sends and the answers parse reads are laid
// out. protocol_test.go pins these positions against the script's source
// and a call's arguments against a golden list.
//
// KEYS: per transfer, its group's state hash and dedupe set: h1, s1, h2, s2,
// ... (on a Redis Cluster one group a call: they share a hash slot).
//
// ARGV (1-based, as Lua reads it; a call of one transfer sends no indices:
// B0 0, nb 0):
const (
	argThreshold = 1 + iota // the rule's threshold: cents (sum) or transfers (count)
	argSize                 // window size, ms
	argSlide                // window slide, ms
	argBucket               // bucket width g = gcd(size, slide), ms
	argLateness             // allowed lateness, ms
	argCap                  // evidence entries kept per bucket (the alert's maxTransactions)
	argTTL                  // key expiry, ms
	argN                    // transfers in the call
	argB0                   // the first bucket index sent formatted
	argNB                   // how many: nb
	argIndices              // then nb decimal indices B0, B0+1, ..., then their nb names "v<B0>", ...
)

// After the indices, per transfer argsPerTransfer arguments: its dedupe key
// (idKey), its time (ms), its amount (cents), and its evidence tail
// "amount,len:payload" (payload: the transfer's id, behind the other
// account for a sender or receiver rule, see evidencePayload). Last, one
// argument: the aggregate, aggSum or aggCount.
const (
	argsPerTransfer = 4
	aggSum          = "sum"
	aggCount        = "count"
)

// Answers: one per transfer, in order. answerPlain (an integer) is a
// transfer counted that fired nothing; anything else is an array {status,
// info[, evidence, alert...]}: status Counted (info: the group's sequence
// number), Duplicate (info 0; the alerts are the ones this transfer fired
// before) or Late (info: the newest time of the group, ms; no evidence, no
// alert). With alerts, evidence is {b, e<b>, ...}: the evidence string of
// each bucket b of the alerts' windows, once however many windows hold it.
const (
	answerPlain    = 1
	answerStatus   = 0 // positions in the array
	answerInfo     = 1
	answerEvidence = 2
	answerAlerts   = 3 // the first alert
)

// Each alert is an array of alertFields integers; the caller lists the
// entries of the window's buckets with a sequence number up to alertSeq.
const (
	alertStart = iota // window start, ms
	alertTotal        // the window's sum of amounts, cents
	alertCount        // its number of transfers
	alertTime         // the crossing transfer's time, ms
	alertSeq          // its sequence number: evidence up to it is listed
	alertFields
)
