package generator

import (
	"fmt"
	"sync"
	"time"

	"github.com/fintrans/fintrans/shared/transfer"
)

// Truth scores alerts against the episodes a generator injected (its ground
// truth):
//   - an episode is caught when an alert of its pair has a window that holds
//     every one of its transfers;
//   - an alert is explained when an episode of its pair has a transfer inside
//     the alert's window; the others are alerts of everyday traffic (or of
//     transfers that did not come from the generator).
//
// Alerts and episodes may arrive in either order. Safe for concurrent use.
type Truth struct {
	// Grace is how long an episode may stay uncaught before it counts as
	// missed (default 15 s: a generator tick, detect, a viewer tick).
	Grace time.Duration
	// Keep is how long episodes and alerts are remembered (default 30 min of
	// wall time, more than a window plus the viewer's delay).
	Keep time.Duration

	mu         sync.Mutex
	episodes   map[[2]string][]*trackedEpisode
	alerts     map[[2]string][]*trackedAlert
	seenAlerts map[string]bool
	uncaught   map[*trackedEpisode]bool
	injected   int
	caught     int
	nAlerts    int
	explained  int
	lastPrune  time.Time
}

type trackedEpisode struct {
	ep     Episode
	at     time.Time // when it was injected (wall clock)
	caught bool
}

type trackedAlert struct {
	id         string
	start, end time.Time
	at         time.Time
	explained  bool
}

// Score is a snapshot of a Truth.
type Score struct {
	Injected    int // episodes injected
	Caught      int // of those, caught by an alert
	Recent      int // uncaught episodes injected less than Grace ago (still in flight)
	Alerts      int // distinct alerts seen
	Unexplained int // alerts no episode explains
}

// Due is the number of episodes that should have been caught by now: the
// caught ones and those uncaught for longer than the grace.
func (s Score) Due() int { return s.Injected - s.Recent }

// String is the status line's part: "caught C of I episodes (+R in
// flight), U of A alerts unexplained".
func (s Score) String() string {
	return fmt.Sprintf("caught %d of %d episodes (+%d in flight), %d of %d alerts unexplained",
		s.Caught, s.Due(), s.Recent, s.Unexplained, s.Alerts)
}

// NewTruth makes an empty Truth.
func NewTruth() *Truth {
	return &Truth{
		Grace:      15 * time.Second,
		Keep:       30 * time.Minute,
		episodes:   map[[2]string][]*trackedEpisode{},
		alerts:     map[[2]string][]*trackedAlert{},
		seenAlerts: map[string]bool{},
		uncaught:   map[*trackedEpisode]bool{},
	}
}

// Observe records a batch's episodes (a Generator's Observe hook).
func (t *Truth) Observe(p Produced) { t.Injected(p.Episodes, time.Now()) }

// Injected records episodes injected at the given time.
func (t *Truth) Injected(eps []Episode, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ep := range eps {
		te := &trackedEpisode{ep: ep, at: at}
		k := [2]string{ep.From, ep.To}
		t.episodes[k] = append(t.episodes[k], te)
		t.injected++
		for _, a := range t.alerts[k] {
			t.match(te, a)
		}
		if !te.caught {
			t.uncaught[te] = true
		}
	}
}

// Alert records an alert (by its CloudEvent id: a repeat counts once).
func (t *Truth) Alert(id string, a transfer.Alert) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seenAlerts[id] {
		return
	}
	t.seenAlerts[id] = true
	t.nAlerts++
	ta := &trackedAlert{id: id, start: a.WindowStart, end: a.WindowEnd, at: time.Now()}
	k := [2]string{a.From, a.To}
	t.alerts[k] = append(t.alerts[k], ta)
	for _, te := range t.episodes[k] {
		t.match(te, ta)
	}
}

// match updates an episode and an alert of the same pair.
func (t *Truth) match(te *trackedEpisode, a *trackedAlert) {
	inside := 0
	for _, ts := range te.ep.Times {
		if !ts.Before(a.start) && ts.Before(a.end) {
			inside++
		}
	}
	if inside > 0 && !a.explained {
		a.explained = true
		t.explained++
	}
	if inside == len(te.ep.Times) && inside > 0 && !te.caught {
		te.caught = true
		t.caught++
		delete(t.uncaught, te)
	}
}

// Score is the snapshot at now; it also forgets what is older than Keep.
func (t *Truth) Score(now time.Time) Score {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Score{Injected: t.injected, Caught: t.caught, Alerts: t.nAlerts, Unexplained: t.nAlerts - t.explained}
	for te := range t.uncaught {
		if now.Sub(te.at) < t.Grace {
			s.Recent++
		}
	}
	if now.Sub(t.lastPrune) > time.Minute {
		t.prune(now.Add(-t.Keep))
		t.lastPrune = now
	}
	return s
}

// prune forgets episodes and alerts recorded before cutoff (counts stay).
func (t *Truth) prune(cutoff time.Time) {
	for k, eps := range t.episodes {
		kept := eps[:0]
		for _, te := range eps {
			if te.at.After(cutoff) {
				kept = append(kept, te)
			} else {
				delete(t.uncaught, te)
			}
		}
		if len(kept) == 0 {
			delete(t.episodes, k)
		} else {
			t.episodes[k] = kept
		}
	}
	for k, as := range t.alerts {
		kept := as[:0]
		for _, a := range as {
			if a.at.After(cutoff) {
				kept = append(kept, a)
			} else {
				delete(t.seenAlerts, a.id)
			}
		}
		if len(kept) == 0 {
			delete(t.alerts, k)
		} else {
			t.alerts[k] = kept
		}
	}
}
