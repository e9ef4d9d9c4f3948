package pipeline

import (
	"github.com/fintrans/fintrans/shared/generator"
	"github.com/fintrans/fintrans/shared/viewer"
)

// scoreEpisodes makes the run say whether detection works: every batch the
// generator sends (from the cron or POST /function/generator) gives its
// episodes to p.Truth, and every alert the viewer prints is matched with
// them. The status line shows the score.
func (p *Pipeline) scoreEpisodes() {
	p.Truth = generator.NewTruth()
	p.Generator.Generator.Observe = p.Truth.Observe
	p.Viewer.Viewer.OnPrint = func(pr viewer.Printed) { p.Truth.Alert(pr.ID, pr.Alert) }
}
