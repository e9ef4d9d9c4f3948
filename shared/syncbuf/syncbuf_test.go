package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/fintrans/fintrans/shared/syncbuf"
)

// Writers in parallel lose nothing (go test -race checks the locking);
// Take hands over what came since the last one.
func TestConcurrentWritesAndTake(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := b.Take(); got != strings.Repeat("x", 800) {
		t.Fatalf("Take after 800 writes: %d bytes", len(got))
	}
	b.Write([]byte("next"))
	if got := b.Take(); got != "next" {
		t.Fatalf("second Take = %q, want only what came after the first", got)
	}
	if got := b.String(); got != "" {
		t.Fatalf("String after Take = %q, want empty", got)
	}
}
