// Package browsertest drives Debian's chromium from Go (chromedp) for the
// tests that need a real browser: the viewer's live page.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Names under which chromium may be on PATH (Debian: chromium).
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the browser's path: $CHROMIUM when set, else the first of
// names on PATH, else "".
func Find() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Start launches a headless chromium with a fresh profile for t and returns
// a chromedp context for one tab, cancelled (browser stopped) at t's end.
// Without chromium the test is skipped, or fails when CI is set (.ci/run
// installs it: apt-get install chromium).
func Start(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := Find()
	if path == "" {
		msg := "chromium not found on PATH (apt-get install -y chromium, or set CHROMIUM=/path/to/chrome)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + ": CI is set, so the browser tests must run")
		}
		t.Skip("skipping the browser test: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root in a container: chromium's sandbox needs user namespaces
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	// Start the browser now, so that a launch failure names itself.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// Screenshot writes a PNG of the tab's viewport to the file named by
// $FINTRANS_SCREENSHOT, when set (README's picture: FINTRANS_SCREENSHOT=
// browsertest/viewer.png go test ./browsertest/ in shared/devkit). It reports the path written.
func Screenshot(ctx context.Context, t testing.TB) {
	t.Helper()
	path := os.Getenv("FINTRANS_SCREENSHOT")
	if path == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot written to %s (%d bytes)", path, len(png))
}
