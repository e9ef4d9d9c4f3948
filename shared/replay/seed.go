package replay

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// SeedStart is the time of the first line WriteSeed writes: the seed's day.
var SeedStart = time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)

// WriteSeed writes n seed lines ("time;from;to;amount") in time order, a
// stand-in for a real file for the benchmark and tests: 100 accounts, so
// 9,900 pairs that each come back now and then; about 24 hours for 20,000
// lines (0 to 8 s between lines), so a pair is often seen again hours after
// its last transfer and its old buckets get pruned; amounts 1.00 to
// 9,999.99, so that some windows go over the threshold. The same seed gives
// the same lines.
func WriteSeed(w io.Writer, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	bw := bufio.NewWriter(w)
	t := SeedStart
	var line []byte
	for range n {
		t = t.Add(time.Duration(rng.IntN(9)) * time.Second)
		from := rng.IntN(100)
		to := rng.IntN(99)
		if to >= from {
			to++
		}
		cents := 100 + rng.Int64N(999_900)
		line = t.AppendFormat(line[:0], time.RFC3339)
		line = append(line, ';')
		line = strconv.AppendInt(line, int64(from), 10)
		line = append(line, ';')
		line = strconv.AppendInt(line, int64(to), 10)
		line = append(line, ';')
		line = strconv.AppendInt(line, cents/100, 10)
		line = append(line, '.', byte('0'+cents/10%10), byte('0'+cents%10), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
