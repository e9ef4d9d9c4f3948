package viewer

import (
	"sort"
	"time"

	"github.com/fintrans/fintrans/shared/transfer"
)

// DefaultRule is the id of the rule behind an alert that names none: the
// seed's job (FRAUD_THRESHOLD over WINDOW_SIZE sliding by WINDOW_SLIDE),
// today's only rule.
const DefaultRule = "structuring"

// RuleOf is the id of the rule that raised an alert (an alert of an older
// detect carries none: it is the seed's rule).
func RuleOf(a transfer.Alert) string {
	if a.Rule == "" {
		return DefaultRule
	}
	return a.Rule
}

// live is what the live page needs from the printed alerts: a sequence
// number per alert, counts, and a way to wait for the next one. Guarded by
// the Viewer's outMu.
type live struct {
	seq     uint64
	changed chan struct{} // closed (and replaced) when an alert is printed
	byRule  map[string]int
	total   int
	lastMin []time.Time // print times within the last minute, oldest first
	stop    chan struct{}
	stopped bool
}

// Stats are the counts the live page shows.
type Stats struct {
	Total     int         `json:"total"`     // alerts printed by this viewer
	PerMinute int         `json:"perMinute"` // of those, in the last minute
	Rules     []RuleCount `json:"rules"`     // per rule, by id
}

// RuleCount is the number of alerts of one rule.
type RuleCount struct {
	Rule  string `json:"rule"`
	Count int    `json:"count"`
}

func (l *live) init() {
	if l.changed == nil {
		l.changed = make(chan struct{})
		l.stop = make(chan struct{})
		l.byRule = map[string]int{}
	}
}

// printed records p (under outMu), gives it its sequence number and wakes
// the live streams.
func (l *live) printed(p *Printed) {
	l.init()
	l.seq++
	p.Seq = l.seq
	l.total++
	l.byRule[RuleOf(p.Alert)]++
	l.lastMin = append(l.trim(p.PrintedAt), p.PrintedAt)
	close(l.changed)
	l.changed = make(chan struct{})
}

// trim drops the print times older than a minute before now.
func (l *live) trim(now time.Time) []time.Time {
	i := sort.Search(len(l.lastMin), func(i int) bool { return now.Sub(l.lastMin[i]) < time.Minute })
	l.lastMin = append(l.lastMin[:0], l.lastMin[i:]...)
	return l.lastMin
}

// Stats are the counts at now.
func (v *Viewer) Stats(now time.Time) Stats {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	v.live.init()
	s := Stats{Total: v.live.total, PerMinute: len(v.live.trim(now)), Rules: []RuleCount{}}
	for r, n := range v.live.byRule {
		s.Rules = append(s.Rules, RuleCount{Rule: r, Count: n})
	}
	sort.Slice(s.Rules, func(i, j int) bool { return s.Rules[i].Rule < s.Rules[j].Rule })
	return s
}

// Since returns the recent alerts printed after sequence number seq, oldest
// first, the latest sequence number, and a channel closed at the next print
// (or when the live streams stop: then stopped is true).
func (v *Viewer) Since(seq uint64) (alerts []Printed, latest uint64, next <-chan struct{}, stopped bool) {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	v.live.init()
	for i := len(v.recent) - 1; i >= 0; i-- {
		p := v.recent[(v.next+i)%len(v.recent)]
		if p.Seq <= seq {
			break
		}
		alerts = append(alerts, p)
	}
	for i, j := 0, len(alerts)-1; i < j; i, j = i+1, j-1 {
		alerts[i], alerts[j] = alerts[j], alerts[i]
	}
	if v.live.stopped {
		return alerts, v.live.seq, v.live.stop, true
	}
	return alerts, v.live.seq, v.live.changed, false
}

// StopLive ends every live stream (so that a server's Shutdown does not
// wait for browsers); later ones end at once.
func (v *Viewer) StopLive() {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	v.live.init()
	if !v.live.stopped {
		v.live.stopped = true
		close(v.live.stop)
	}
}

// liveStop is closed by StopLive.
func (v *Viewer) liveStop() <-chan struct{} {
	v.outMu.Lock()
	defer v.outMu.Unlock()
	v.live.init()
	return v.live.stop
}
