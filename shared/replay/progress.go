package replay

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress counts what is read through it and, while it runs, rewrites one
// status line on a terminal every interval: lines read, their rate, and the
// share of the input read when its size is known. Stop ends the line.
type Progress struct {
	r       io.Reader
	size    int64 // input size in bytes; <= 0: unknown
	bytes   atomic.Int64
	lines   atomic.Int64
	started time.Time

	w    io.Writer
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// NewProgress wraps r (of size bytes, or <= 0 when unknown). With w != nil
// it writes the status line to w every interval until Stop.
func NewProgress(r io.Reader, size int64, w io.Writer, interval time.Duration) *Progress {
	p := &Progress{r: r, size: size, w: w, started: time.Now(), stop: make(chan struct{})}
	if w != nil {
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					fmt.Fprint(p.w, "\r"+p.Line(time.Now())+"\x1b[K")
				case <-p.stop:
					return
				}
			}
		}()
	}
	return p
}

// Read counts bytes and line ends as the reader hands them on.
func (p *Progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.bytes.Add(int64(n))
	p.lines.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
	return n, err
}

// Line is the status at now: "replay: 1200000 lines read, 85000 lines/s,
// 37% of 64.0 MB".
func (p *Progress) Line(now time.Time) string {
	lines, read := p.lines.Load(), p.bytes.Load()
	secs := max(now.Sub(p.started).Seconds(), 1e-3)
	s := fmt.Sprintf("replay: %d lines read, %.0f lines/s", lines, float64(lines)/secs)
	if p.size > 0 {
		s += fmt.Sprintf(", %d%% of %s", min(100, read*100/p.size), megabytes(p.size))
	} else {
		s += ", " + megabytes(read)
	}
	return s
}

// Elapsed is the time since the progress started.
func (p *Progress) Elapsed() time.Duration { return time.Since(p.started) }

// Stop ends the status line (the final summary goes on the next line).
func (p *Progress) Stop() {
	p.once.Do(func() {
		close(p.stop)
		p.done.Wait()
		if p.w != nil {
			fmt.Fprint(p.w, "\r"+p.Line(time.Now())+"\x1b[K\n")
		}
	})
}

func megabytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
