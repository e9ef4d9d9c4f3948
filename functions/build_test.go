package functions_test

// TestFunctionsBuildWithGolangHTTPTemplate builds each function exactly as
// `faas-cli build` with the upstream golang-http template does, then runs it
// the way of-watchdog does and talks to it over HTTP.
//
// The template is not re-typed here: its files are taken as they are from
// ../shared/openfaas/golang-http/ (upstream, unchanged), and so is the Go
// version of its Dockerfile's build image (golang:1.25-alpine: the test
// builds with GOTOOLCHAIN=go1.25.0, which the Go module proxy serves, and
// official golang images set GOTOOLCHAIN=local, so a module graph that needs
// a newer Go fails here as it fails there). The steps, in the Dockerfile's
// order:
//
//   - faas-cli copies the template folder to build/<fn>/ and overlays the
//     handler folder onto build/<fn>/function/, skipping entries named
//     "build" and "template". Its CopyFiles uses os.Stat, so symlinks are
//     followed: functions/<fn>/shared -> ../../shared becomes a real copy.
//   - The Dockerfile's gofmt check (its own shell line, run by sh).
//   - sh ./modules-cleanup.sh (the template's script, run as it is).
//   - mkdir -p function/static; in function/: go test ./... -cover.
//   - At the root: CGO_ENABLED=0 go build --ldflags "-s -w" -o handler .
//     with GOFLAGS empty, so -mod=readonly: an incomplete go.mod or go.sum
//     fails the build as it would in Docker.
//   - The image runs of-watchdog (mode=http, upstream_url
//     http://127.0.0.1:8082, fprocess=./handler) in /home/app: the watchdog
//     starts the handler with the function's environment and forwards
//     requests to port 8082. The test does the same: it starts ./handler
//     in the build folder with that environment and calls 127.0.0.1:8082.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/devkit/embeddedkafka"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/syncbuf"
)

// configVars are fintrans's environment variables; the host's values are
// removed before each test sets its own.
var configVars = []string{
	"REDIS_URL", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "REDIS_CA_FILE", "REDIS_CLUSTER", "REDIS_POOL_SIZE",
	"FRAUD_THRESHOLD", "WINDOW_SIZE", "WINDOW_SLIDE", "ALLOWED_LATENESS", "ALERT_MAX_TRANSACTIONS", "STATE_TTL",
	"K_SINK", "K_CE_OVERRIDES", "KAFKA_BROKERS", "KAFKA_VERSION", "TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC",
	"CONSUMER_GROUP", "VIEWER_GROUP", "PORT", "MAX_BODY_BYTES", "MAX_BATCH", "LOG_FORMAT", "LOG_LEVEL",
	"GENERATOR_PROFILE", "GENERATOR_ACCOUNTS", "GENERATOR_TRANSFERS", "GENERATOR_MIN_AMOUNT", "GENERATOR_MAX_AMOUNT",
	"GENERATOR_FRAUD_RATE", "GENERATOR_FORMAT", "GENERATOR_SCHEDULE", "VIEWER_SCHEDULE",
	"read_timeout", "write_timeout", "exec_timeout", "healthcheck_interval",
	"GOFLAGS", "GOTOOLCHAIN", "GO111MODULE", "CGO_ENABLED", "GOWORK",
}

// cleanEnv is the test process's environment without fintrans's variables,
// plus extra ("K=V").
func cleanEnv(extra ...string) []string {
	drop := map[string]bool{}
	for _, k := range configVars {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// templateDir is ../shared/openfaas/golang-http, the upstream template kept
// beside the repository. Without it the build test skips locally and fails
// on CI.
func templateDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "openfaas", "golang-http")
	if !fileExists(filepath.Join(dir, "Dockerfile")) {
		msg := fmt.Sprintf("the upstream golang-http template is not at %s (expected the shared/ folder next to the repository); cannot build the functions as OpenFaaS does", dir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (skipping: CI is not set)")
	}
	return dir
}

var buildImageRE = regexp.MustCompile(`(?m)^FROM\s.*\bgolang:(\d+\.\d+)(?:\.\d+)?-alpine\b`)

// dockerfileGo is the Go minor version of the Dockerfile's build image
// ("1.25" for golang:1.25-alpine).
func dockerfileGo(t *testing.T, dockerfile string) string {
	t.Helper()
	m := buildImageRE.FindStringSubmatch(dockerfile)
	if m == nil {
		t.Fatalf("no golang:<version>-alpine build image in the template's Dockerfile")
	}
	return m[1]
}

// dockerfileRun returns the Dockerfile's RUN instruction that contains
// marker, its continuation lines joined.
func dockerfileRun(t *testing.T, dockerfile, marker string) string {
	t.Helper()
	joined := strings.ReplaceAll(dockerfile, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if cmd, ok := strings.CutPrefix(line, "RUN "); ok && strings.Contains(cmd, marker) {
			return cmd
		}
	}
	t.Fatalf("the template's Dockerfile has no RUN line with %q", marker)
	return ""
}

// toolchain is the Go of the template's build image, fetched through the
// module proxy (GOTOOLCHAIN=go1.N.0, the oldest release of that minor: what
// builds with it builds with any go1.N image). It returns the toolchain's
// bin folder and the environment of the Dockerfile's build stage.
type toolchain struct {
	bin string
	env []string
}

func buildToolchain(t *testing.T, minor string) toolchain {
	t.Helper()
	version := "go" + minor + ".0"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH")
	}
	cmd := exec.Command(goBin, "env", "GOROOT")
	cmd.Env = cleanEnv("GOTOOLCHAIN=" + version)
	// GOROOT from stdout only: the first time, stderr says "go: downloading
	// go1.N.0 (...)" (on a fresh machine that line once became part of the
	// path).
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOTOOLCHAIN=%s go env GOROOT (fetches the template's Go through the module proxy): %v\n%s", version, err, stderr.String())
	}
	bin := filepath.Join(strings.TrimSpace(string(out)), "bin")
	if !fileExists(filepath.Join(bin, "gofmt")) {
		t.Fatalf("%s has no gofmt", bin)
	}
	// The build stage's ARGs and ENV: GO111MODULE=on (stack.yml's build
	// arg), GOFLAGS empty, CGO_ENABLED=0; the image's Go first on PATH.
	env := cleanEnv("PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOTOOLCHAIN="+version, "GO111MODULE=on", "GOFLAGS=", "CGO_ENABLED=0", "GOWORK=off",
		"TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH)
	return toolchain{bin: bin, env: env}
}

func TestFunctionsBuildWithGolangHTTPTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds the three functions as the golang-http template does and runs them (slow)")
	}
	tpl := templateDir(t)
	dockerfile := readFile(t, filepath.Join(tpl, "Dockerfile"))
	tc := buildToolchain(t, dockerfileGo(t, dockerfile))
	root := repoRoot(t)
	work := t.TempDir()

	for _, fn := range functionNames {
		t.Run(fn, func(t *testing.T) {
			dir := filepath.Join(work, fn)
			buildLikeTemplate(t, tc, tpl, dockerfile, root, fn, dir)
			switch fn {
			case "detect":
				testDetect(t, dir)
			case "generator":
				testGenerator(t, dir)
			case "viewer":
				testViewer(t, dir)
			}
		})
	}
}

// buildLikeTemplate lays out the template's build context in dir and runs
// the Dockerfile's build steps there; dir/handler is the result.
func buildLikeTemplate(t *testing.T, tc toolchain, tpl, dockerfile, root, fn, dir string) {
	t.Helper()
	src := filepath.Join(root, "functions", fn)
	if !fileExists(filepath.Join(src, "handler.go")) {
		t.Fatalf("functions/%s/handler.go does not exist yet", fn)
	}

	// faas-cli: the template folder, then the handler folder over function/.
	if err := copyFollowingSymlinks(tpl, dir, 0); err != nil {
		t.Fatalf("copying the template: %v", err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "build" || e.Name() == "template" {
			continue // faas-cli skips these
		}
		if err := copyFollowingSymlinks(filepath.Join(src, e.Name()), filepath.Join(dir, "function", e.Name()), 0); err != nil {
			t.Fatalf("copying functions/%s: %v", fn, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "function", "shared")); err != nil || !fi.IsDir() {
		t.Fatalf("function/shared is not a real folder after the copy (%v, %v)", fi, err)
	}

	sh := func(subdir, script string) ([]byte, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = filepath.Join(dir, subdir)
		cmd.Env = tc.env
		return cmd.CombinedOutput()
	}
	run := func(step, subdir, script string) {
		t.Helper()
		if out, err := sh(subdir, script); err != nil {
			if step == "gofmt check" {
				list, _ := sh(subdir, "gofmt -l $(find . -type f -name '*.go')")
				out = append(out, "files gofmt (of the template's Go) would change:\n"...)
				out = append(out, list...)
			}
			t.Fatalf("%s (the template's Dockerfile: RUN %s) failed: %v\n%s", step, script, err, out)
		}
	}
	run("gofmt check", ".", dockerfileRun(t, dockerfile, "gofmt -l"))
	run("modules-cleanup.sh", ".", dockerfileRun(t, dockerfile, "modules-cleanup.sh"))
	if gomod := readFile(t, filepath.Join(dir, "go.mod")); !strings.Contains(gomod, "github.com/fintrans/fintrans/shared => ./function/shared") {
		t.Fatalf("after modules-cleanup.sh the shared module is not replaced by ./function/shared:\n%s", gomod)
	}
	run("mkdir static", ".", "mkdir -p function/static")
	run("go test in function/", "function", dockerfileRun(t, dockerfile, "go test ./..."))
	run("go build", ".", dockerfileRun(t, dockerfile, "go build"))
	if !fileExists(filepath.Join(dir, "handler")) {
		t.Fatalf("the build wrote no handler binary")
	}
}

// copyFollowingSymlinks copies src to dst like faas-cli's CopyFiles: it
// stats through symlinks, so a link to a folder becomes a real folder.
func copyFollowingSymlinks(src, dst string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too deep (symlink loop?)", src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.MkdirAll(dst, fi.Mode().Perm()|0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := copyFollowingSymlinks(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%v)", src, fi.Mode())
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// process is a running function binary.
type process struct {
	url string
	out syncbuf.Buffer // its stdout and stderr
}

func (p *process) logs() string { return p.out.String() }

// upstreamAddr is where the template's main.go listens (":8082", fixed)
// and where of-watchdog forwards requests (upstream_url).
const upstreamAddr = "127.0.0.1:8082"

// start runs dir/handler the way of-watchdog runs the image's fprocess: in
// the image's working folder, with the image's ENV (fprocess, mode,
// upstream_url, prefix_logs) and the function's environment, then waits
// until port 8082 answers. Its output is logged when the test fails.
func start(t *testing.T, dir string, env ...string) *process {
	t.Helper()
	if c, err := net.DialTimeout("tcp", upstreamAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s is already in use: the template's server listens on port 8082 and cannot start", upstreamAddr)
	}
	p := &process{url: "http://" + upstreamAddr}
	cmd := exec.Command("./handler")
	cmd.Dir = dir
	cmd.Env = cleanEnv(append([]string{
		"fprocess=./handler", "mode=http", "upstream_url=http://" + upstreamAddr, "prefix_logs=false",
		"read_timeout=60s", "write_timeout=60s", "healthcheck_interval=100ms",
	}, env...)...)
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // as of-watchdog on shutdown
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- output of %s/handler ---\n%s", filepath.Base(dir), p.logs())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", upstreamAddr, time.Second); err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s/handler exited before listening: %v\n%s", filepath.Base(dir), err, p.logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/handler did not listen on %s within 60s\n%s", filepath.Base(dir), upstreamAddr, p.logs())
		}
	}
}

var client = &http.Client{Timeout: 90 * time.Second}

func do(t *testing.T, method, url string, header http.Header, body string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func binaryEvent(id string) http.Header {
	return http.Header{
		"Ce-Specversion": {"1.0"},
		"Ce-Type":        {"io.fintrans.transaction"},
		"Ce-Id":          {id},
		"Ce-Source":      {"/test"},
		"Ce-Time":        {time.Now().UTC().Format(time.RFC3339)},
		"Content-Type":   {"application/json"},
	}
}

// containsString reports whether v (decoded JSON) holds the string s
// anywhere.
func containsString(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return x == s
	case []any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if containsString(e, s) {
				return true
			}
		}
	}
	return false
}

func testDetect(t *testing.T, dir string) {
	redis := redistest.Start(t)
	var mu sync.Mutex
	var sunk [][]byte
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		sunk = append(sunk, b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(sink.Close)

	p := start(t, dir, "REDIS_URL="+redis.URL, "K_SINK="+sink.URL, "LOG_LEVEL=debug")

	t.Run("binary cloudevent is counted", func(t *testing.T) {
		code, _, body := do(t, http.MethodPost, p.url+"/", binaryEvent("build-test-1"), `{"from":"1","to":"2","amount":"12.50"}`)
		if code != http.StatusOK {
			t.Fatalf("status %d, want 200; body %s", code, body)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("answer is not a JSON object: %v: %s", err, body)
		}
		results, ok := v["results"]
		if !ok {
			t.Fatalf("answer has no \"results\": %s", body)
		}
		if !containsString(results, "counted") {
			t.Fatalf("results do not say \"counted\": %s", body)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(sunk) != 0 {
			t.Errorf("12.50 raised an alert: %q", sunk)
		}
	})

	t.Run("malformed event is refused", func(t *testing.T) {
		code, _, body := do(t, http.MethodPost, p.url+"/", binaryEvent("build-test-2"), `{"from":"1","to":`)
		if code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400; body %s", code, body)
		}
		if !json.Valid(bytes.TrimSpace(body)) {
			t.Errorf("400 answer is not JSON: %s", body)
		}
	})
}

// recordedEvent is a CloudEvent as the K_SINK stand-in received it.
type recordedEvent struct {
	Type string
	ID   string
}

func testGenerator(t *testing.T, dir string) {
	var mu sync.Mutex
	var events []recordedEvent
	var bad []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ct := r.Header.Get("Content-Type")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Header.Get("Ce-Type") != "":
			events = append(events, recordedEvent{r.Header.Get("Ce-Type"), r.Header.Get("Ce-Id")})
		case strings.HasPrefix(ct, "application/cloudevents-batch+json"):
			var batch []recordedEvent
			if err := json.Unmarshal(b, &batch); err != nil {
				bad = append(bad, fmt.Sprintf("batch: %v", err))
			}
			events = append(events, batch...)
		case strings.HasPrefix(ct, "application/cloudevents+json"):
			var e recordedEvent
			if err := json.Unmarshal(b, &e); err != nil {
				bad = append(bad, fmt.Sprintf("structured: %v", err))
			}
			events = append(events, e)
		default:
			bad = append(bad, fmt.Sprintf("not a CloudEvent: Content-Type %q, body %.200s", ct, b))
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(sink.Close)

	p := start(t, dir, "K_SINK="+sink.URL, "GENERATOR_ACCOUNTS=5", "GENERATOR_TRANSFERS=20")
	code, _, body := do(t, http.MethodPost, p.url+"/", nil, "")
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bad {
		t.Errorf("sink received %s", b)
	}
	n := 0
	for _, e := range events {
		if e.Type == "io.fintrans.transaction" {
			n++
		} else {
			t.Errorf("sink received an event of type %q", e.Type)
		}
	}
	if n == 0 {
		t.Fatalf("sink received no io.fintrans.transaction event (got %d events); generator answered %s", len(events), body)
	}
}

func testViewer(t *testing.T, dir string) {
	k, err := embeddedkafka.Start(1, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)

	p := start(t, dir, "KAFKA_BROKERS="+strings.Join(k.Brokers, ","), "FRAUD_TOPIC=fraud", "VIEWER_GROUP=fintrans-viewer-build-test")
	code, hdr, body := do(t, http.MethodGet, p.url+"/", nil, "")
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", code, body)
	}
	if !json.Valid(bytes.TrimSpace(body)) {
		t.Fatalf("viewer's answer is not JSON (Content-Type %q): %s", hdr.Get("Content-Type"), body)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	only := func(x, y string, mark string) []string {
		count := map[string]int{}
		for _, l := range strings.Split(y, "\n") {
			count[l]++
		}
		var out []string
		for _, l := range strings.Split(x, "\n") {
			if count[l] > 0 {
				count[l]--
				continue
			}
			out = append(out, mark+l)
		}
		return out
	}
	return strings.Join(append(only(a, b, "- "), only(b, a, "+ ")...), "\n")
}
