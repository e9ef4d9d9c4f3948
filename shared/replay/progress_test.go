package replay_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/replay"
	"github.com/fintrans/fintrans/shared/syncbuf"
)

// slowReader hands out its data in small pieces, one every few milliseconds.
type slowReader struct{ data []byte }

func (s *slowReader) Read(b []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(2 * time.Millisecond)
	n := copy(b[:min(len(b), 64)], s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestProgressShowsLinesRateAndPercent(t *testing.T) {
	input := strings.Repeat("2017-07-23T01:06:47Z;66;26;7810\n", 200) // 6,400 bytes
	out := &syncbuf.Buffer{}
	p := replay.NewProgress(&slowReader{data: []byte(input)}, int64(len(input)), out, 20*time.Millisecond)
	if _, err := io.Copy(io.Discard, p); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	p.Stop() // once
	got := out.String()
	updates := strings.Split(strings.TrimSuffix(got, "\n"), "\r")
	if len(updates) < 3 {
		t.Fatalf("%d updates, want several while reading: %q", len(updates), got)
	}
	last := updates[len(updates)-1]
	if !strings.HasPrefix(last, "replay: 200 lines read, ") || !strings.Contains(last, " lines/s, 100% of 6.4 kB") || !strings.HasSuffix(got, "\x1b[K\n") {
		t.Errorf("final line %q", last)
	}
	if mid := updates[1]; !strings.Contains(mid, "% of") || strings.Contains(mid, "100%") {
		t.Errorf("an early update %q does not show a partial percentage", mid)
	}

	// Unknown size (stdin): bytes read instead of a percentage; no writer,
	// no output.
	q := replay.NewProgress(strings.NewReader(input), 0, nil, time.Millisecond)
	_, _ = io.Copy(io.Discard, q)
	q.Stop()
	if l := q.Line(time.Now()); !strings.HasPrefix(l, "replay: 200 lines read, ") || !strings.HasSuffix(l, ", 6.4 kB") {
		t.Errorf("line without a size: %q", l)
	}
}
