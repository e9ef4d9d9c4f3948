package generator_test

import (
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/transfer"
)

func TestTruthMatchesEpisodesAndAlertsInEitherOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 9, 3, 0, 0, time.UTC)
	ep := generator.Episode{From: "a", To: "b", Times: []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}}
	win := func(from, to string, start time.Time) transfer.Alert {
		return transfer.Alert{From: from, To: to, WindowStart: start, WindowEnd: start.Add(10 * time.Minute)}
	}
	tr := generator.NewTruth()
	now := time.Now()

	// Holds two of the three transfers: explained, but does not catch it.
	tr.Alert("w1", win("a", "b", t0.Add(-10*time.Minute+90*time.Second)))
	tr.Injected([]generator.Episode{ep}, now)
	if s := tr.Score(now); s.Caught != 0 || s.Injected != 1 || s.Recent != 1 || s.Alerts != 1 || s.Unexplained != 0 {
		t.Fatalf("after a partial window: %+v", s)
	}
	// Another pair's alert, and a window of the pair after the episode:
	// unexplained.
	tr.Alert("x", win("b", "a", t0.Add(-4*time.Minute)))
	tr.Alert("w2", win("a", "b", t0.Add(4*time.Minute)))
	// The window holding all three catches it; a repeat counts once.
	tr.Alert("w3", win("a", "b", t0.Add(-4*time.Minute)))
	tr.Alert("w3", win("a", "b", t0.Add(-4*time.Minute)))
	s := tr.Score(now)
	if s.Caught != 1 || s.Due() != 1 || s.Recent != 0 || s.Alerts != 4 || s.Unexplained != 2 {
		t.Fatalf("after the covering window: %+v", s)
	}
	if got, want := s.String(), "caught 1 of 1 episodes (+0 in flight), 2 of 4 alerts unexplained"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}

	// An episode no alert covers is in flight during the grace, then missed.
	tr.Injected([]generator.Episode{{From: "c", To: "d", Times: []time.Time{t0}}}, now)
	if s := tr.Score(now.Add(time.Second)); s.Recent != 1 || s.Due() != 1 || s.Caught != 1 {
		t.Fatalf("within the grace: %+v", s)
	}
	if s := tr.Score(now.Add(tr.Grace + time.Second)); s.Recent != 0 || s.Due() != 2 || s.Caught != 1 {
		t.Fatalf("after the grace: %+v", s)
	}
}
