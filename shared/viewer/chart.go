package viewer

import (
	"strconv"
	"strings"
	"time"

	"github.com/fintrans/fintrans/shared/money"
	"github.com/fintrans/fintrans/shared/transfer"
)

// The chart of an alert: the window's listed transfers accumulating, step
// by step over the window's time, to the threshold line. Drawn server-side
// as inline SVG (numbers only: no text of the alert goes into it).
const (
	chartW = 320
	chartH = 90
	padT   = 8 // room above the highest value
)

// Chart is what the SVG template draws, in the viewBox 0 0 chartW chartH.
type Chart struct {
	W, H       int
	Steps      string  // the path of the running total ("M x y L ...")
	Rest       string  // a dashed step to the total for transfers not listed ("" when all are)
	Dots       []Dot   // one per listed transfer; the last one crossed (or got closest)
	ThresholdY float64 // the threshold line's y
	Label      string  // accessible description
}

// Dot is one transfer on the chart.
type Dot struct {
	X, Y    float64
	Crossed bool // this transfer took the running total over the threshold
}

// ChartOf draws an alert's chart: the window's aggregate growing transfer
// by transfer (the amounts for a sum rule, one per transfer for a count
// rule) up to the threshold line.
func ChartOf(a transfer.Alert) Chart {
	c := Chart{W: chartW, H: chartH}
	step := func(t transfer.AlertTransfer) int64 {
		if a.Threshold.Count {
			return 1
		}
		return int64(t.Amount)
	}
	total, threshold := a.Value.N, a.Threshold.N
	if !a.Threshold.Count {
		total = max(total, int64(a.Total))
	}
	top := max(total, threshold)
	var listed int64
	for _, t := range a.Transactions {
		listed += step(t)
	}
	top = max(top, listed)
	if top <= 0 {
		top = 1
	}
	span := a.WindowEnd.Sub(a.WindowStart)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return 0
		}
		f := float64(t.Sub(a.WindowStart)) / float64(span)
		return round1(min(max(f, 0), 1) * chartW)
	}
	y := func(v int64) float64 {
		return round1(chartH - float64(v)/float64(top)*(chartH-padT))
	}
	c.ThresholdY = y(threshold)
	var b strings.Builder
	b.WriteString("M0 " + num(y(0)))
	var run int64
	crossed := false
	for _, t := range a.Transactions {
		xi := x(t.Time)
		b.WriteString(" L" + num(xi) + " " + num(y(run)))
		run += step(t)
		b.WriteString(" L" + num(xi) + " " + num(y(run)))
		d := Dot{X: xi, Y: y(run)}
		if !crossed && run > threshold {
			d.Crossed, crossed = true, true
		}
		c.Dots = append(c.Dots, d)
	}
	last := 0.0
	if n := len(c.Dots); n > 0 {
		last = c.Dots[n-1].X
	}
	c.Steps = b.String()
	if run < total {
		// Transfers beyond the rule's maxTransactions: one dashed step at
		// the alert's time (the transfer that crossed).
		xa := max(x(a.Time), last)
		c.Rest = "M" + num(last) + " " + num(y(run)) + " L" + num(xa) + " " + num(y(run)) + " L" + num(xa) + " " + num(y(total))
	}
	what := "running total"
	if a.Threshold.Count {
		what = "running count"
	}
	value := a.Value
	if !a.Threshold.Count {
		value = transfer.Cents(money.Cents(total))
	}
	c.Label = what + " of " + strconv.Itoa(len(a.Transactions)) + " listed transfers reaching " + value.String() +
		" against the threshold " + a.Threshold.String()
	return c
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
