package functions_test

// TestFunctionsBuildWithGolangHTTPTemplate builds each function the way
// `faas-cli build` with the golang-http template does, then runs it and
// talks to it over HTTP.
//
// What the real build does (openfaas/golang-http-template, template/golang-http):
//
//   - faas-cli copies the template folder (Dockerfile, main.go, go.mod of
//     `module handler`, modules-cleanup.sh) to build/<fn>/ and the handler
//     folder into build/<fn>/function/, skipping entries named "build" and
//     "template". Its CopyFiles uses os.Stat, so symlinks are followed:
//     functions/<fn>/shared -> ../../shared becomes a real copy of shared/.
//   - The Dockerfile runs a gofmt check on every .go file outside vendor/,
//     then modules-cleanup.sh: the function's vendor/ (if any) moves to the
//     root; function/go.mod and function/go.sum replace the template's (mv
//     under set -e: a missing go.sum stops the build); `=> ./` in replace
//     directives becomes `=> ./function/`; lines mentioning handler/function
//     (among them `module handler/function`) are dropped; and
//     `go mod edit -replace=handler/function=./function -module handler`
//     makes the function's module the build's root module "handler".
//   - Then `go test ./... -cover` in function/ and `go build` of main.go at
//     the root, with GOFLAGS from the build args (empty: -mod=readonly).
//   - main.go (package main, import "handler/function" and the
//     templates-sdk) serves function.Handle on :8082 behind of-watchdog: it
//     reads the body, builds handler.Request{Body, Header, Method,
//     QueryString, Host} with the request's context, and writes back the
//     response's headers, StatusCode (0 means 200; an error means 500) and
//     Body.
//
// This test repeats those steps without Docker: same copy, same go.mod
// rewrite, a main.go of the same shape (listening on a free loopback port),
// go build with GOFLAGS=-mod=mod, and it reports when the build had to touch
// go.mod/go.sum (the real, read-only build would then fail).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/embedded"
	"github.com/fintrans/fintrans/shared/redistest"
)

// templateGoMod is template/golang-http/go.mod. It only matters when a
// function has no go.mod of its own (ours all have one, which replaces it).
const templateGoMod = `module handler

go 1.23

require github.com/openfaas/templates-sdk/go-http v0.0.0-20220408082716-5981c545cb03
`

// templateMainGo has the shape of template/golang-http/main.go. It differs
// only in where it listens: HANDLER_LISTEN (default a free loopback port,
// instead of :8082 behind of-watchdog) and it writes the address it got to
// HANDLER_ADDR_FILE, so the test needs no port guessing.
const templateMainGo = `package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"handler/function"

	handler "github.com/openfaas/templates-sdk/go-http"
)

const defaultTimeout = 10 * time.Second

func main() {
	readTimeout := parseIntOrDurationValue(os.Getenv("read_timeout"), defaultTimeout)
	writeTimeout := parseIntOrDurationValue(os.Getenv("write_timeout"), defaultTimeout)

	addr := os.Getenv("HANDLER_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("[entrypoint] listen: %v", err)
	}
	if f := os.Getenv("HANDLER_ADDR_FILE"); f != "" {
		if err := os.WriteFile(f+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(f+".tmp", f); err != nil {
			log.Fatal(err)
		}
	}

	s := &http.Server{
		ReadTimeout:    readTimeout,
		WriteTimeout:   writeTimeout,
		MaxHeaderBytes: 1 << 20,
	}
	http.HandleFunc("/", makeRequestHandler())

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	if err := s.Serve(ln); err != http.ErrServerClosed {
		log.Fatalf("[entrypoint] Error ListenAndServe: %v", err)
	}
}

func makeRequestHandler() func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		var input []byte

		if r.Body != nil {
			defer r.Body.Close()

			bodyBytes, bodyErr := io.ReadAll(r.Body)

			if bodyErr != nil {
				log.Printf("Error reading body from request.")
			}

			input = bodyBytes
		}

		req := handler.Request{
			Body:        input,
			Header:      r.Header,
			Method:      r.Method,
			QueryString: r.URL.RawQuery,
			Host:        r.Host,
		}
		req.WithContext(r.Context())

		result, resultErr := function.Handle(req)

		if result.Header != nil {
			for k, v := range result.Header {
				w.Header()[k] = v
			}
		}

		if resultErr != nil {
			log.Print(resultErr)
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			if result.StatusCode == 0 {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(result.StatusCode)
			}
		}

		w.Write(result.Body)
	}
}

func parseIntOrDurationValue(val string, fallback time.Duration) time.Duration {
	if len(val) > 0 {
		parsedVal, parseErr := strconv.Atoi(val)
		if parseErr == nil && parsedVal >= 0 {
			return time.Duration(parsedVal) * time.Second
		}
	}

	duration, durationErr := time.ParseDuration(val)
	if durationErr != nil {
		return fallback
	}
	return duration
}
`

// configVars are fintrans's environment variables; the host's values are
// removed before each test sets its own.
var configVars = []string{
	"REDIS_URL", "REDIS_PASSWORD", "REDIS_PASSWORD_FILE", "REDIS_CA_FILE", "REDIS_CLUSTER", "REDIS_POOL_SIZE",
	"FRAUD_THRESHOLD", "WINDOW_SIZE", "WINDOW_SLIDE", "ALLOWED_LATENESS", "ALERT_MAX_TRANSACTIONS", "STATE_TTL",
	"K_SINK", "K_CE_OVERRIDES", "KAFKA_BROKERS", "KAFKA_VERSION", "TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC",
	"CONSUMER_GROUP", "VIEWER_GROUP", "PORT", "MAX_BODY_BYTES", "MAX_BATCH", "LOG_FORMAT", "LOG_LEVEL",
	"GENERATOR_ACCOUNTS", "GENERATOR_TRANSFERS", "GENERATOR_MIN_AMOUNT", "GENERATOR_MAX_AMOUNT",
	"GENERATOR_FRAUD_RATE", "GENERATOR_FORMAT", "GENERATOR_SCHEDULE", "VIEWER_SCHEDULE",
	"HANDLER_LISTEN", "HANDLER_ADDR_FILE", "read_timeout", "write_timeout", "exec_timeout",
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

// goTool finds the go or gofmt command: on PATH, else next to the go
// command that runs this test.
func goTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if goBin, err := exec.LookPath("go"); err == nil {
		if p := filepath.Join(filepath.Dir(goBin), name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not found on PATH", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestFunctionsBuildWithGolangHTTPTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds the three functions as the golang-http template does and runs them (slow)")
	}
	root := repoRoot(t)
	work := t.TempDir()

	for _, fn := range functionNames {
		t.Run(fn, func(t *testing.T) {
			bin := buildLikeTemplate(t, root, fn, filepath.Join(work, fn))
			switch fn {
			case "detect":
				testDetect(t, bin)
			case "generator":
				testGenerator(t, bin)
			case "viewer":
				testViewer(t, bin)
			}
		})
	}
}

// buildLikeTemplate lays out the template's build context in dir and builds
// it; it returns the binary.
func buildLikeTemplate(t *testing.T, root, fn, dir string) string {
	t.Helper()
	goBin := goTool(t, "go")
	src := filepath.Join(root, "functions", fn)
	if !fileExists(filepath.Join(src, "handler.go")) {
		t.Fatalf("functions/%s/handler.go does not exist yet", fn)
	}

	// faas-cli: template files, then the handler folder into function/.
	if err := os.MkdirAll(filepath.Join(dir, "function"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.mod"), templateGoMod)
	writeFile(t, filepath.Join(dir, "main.go"), templateMainGo)
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

	// Dockerfile: gofmt check on everything outside vendor/.
	gofmtCheck(t, dir)

	// modules-cleanup.sh.
	modulesCleanup(t, goBin, dir)
	gomodBefore := readFile(t, filepath.Join(dir, "go.mod"))
	gosumBefore := readFile(t, filepath.Join(dir, "go.sum"))

	env := cleanEnv("GOWORK=off", "GO111MODULE=on", "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false")

	// Dockerfile: go test ./... -cover in function/ (no services, no config).
	t.Run("go test in function", func(t *testing.T) {
		cmd := exec.Command(goBin, "test", "-count=1", "-cover", "./...")
		cmd.Dir = filepath.Join(dir, "function")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go test ./... -cover in function/ (the template's build runs it without any fintrans environment) failed: %v\n%s", err, out)
		}
	})

	// Dockerfile: go build at the root.
	bin := filepath.Join(dir, "handler")
	cmd := exec.Command(goBin, "build", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build (as the golang-http template) failed: %v\n%s\n--- go.mod after modules-cleanup ---\n%s", err, out, gomodBefore)
	}

	// GOFLAGS=-mod=mod lets go fix up go.mod/go.sum; the template's build
	// (GOFLAGS empty, so -mod=readonly) would have failed instead.
	if after := readFile(t, filepath.Join(dir, "go.mod")); after != gomodBefore {
		t.Errorf("building changed go.mod: functions/%s/go.mod is incomplete and the template's read-only build fails; run `go mod tidy` in functions/%s\n%s", fn, fn, lineDiff(gomodBefore, after))
	}
	if after := readFile(t, filepath.Join(dir, "go.sum")); after != gosumBefore {
		t.Errorf("building changed go.sum: functions/%s/go.sum is incomplete and the template's read-only build fails; run `go mod tidy` in functions/%s\n%s", fn, fn, lineDiff(gosumBefore, after))
	}
	return bin
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

func gofmtCheck(t *testing.T, dir string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() && (rel == "vendor" || rel == filepath.Join("function", "vendor")) {
			return filepath.SkipDir
		}
		if !e.IsDir() && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gofmt := goTool(t, "gofmt")
	var bad []string
	for len(files) > 0 {
		n := min(len(files), 200)
		out, err := exec.Command(gofmt, append([]string{"-l"}, files[:n]...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gofmt: %v\n%s", err, out)
		}
		for _, l := range strings.Fields(string(out)) {
			rel, _ := filepath.Rel(dir, l)
			bad = append(bad, rel)
		}
		files = files[n:]
	}
	if len(bad) > 0 {
		t.Errorf("the template's build stops at its gofmt check (\"Run gofmt -s -w on your Golang code\"); not gofmt'ed: %v", bad)
	}
}

var handlerFunctionLine = regexp.MustCompile(`\shandler/function`)

// modulesCleanup does what template/golang-http/modules-cleanup.sh does.
func modulesCleanup(t *testing.T, goBin, dir string) {
	t.Helper()
	fnDir := filepath.Join(dir, "function")
	if fileExists(filepath.Join(fnDir, "vendor")) {
		if err := os.Rename(filepath.Join(fnDir, "vendor"), filepath.Join(dir, "vendor")); err != nil {
			t.Fatal(err)
		}
	}
	if !fileExists(filepath.Join(fnDir, "go.mod")) {
		t.Fatalf("function has no go.mod: the template would build it against its own go.mod only")
	}
	if err := os.Rename(filepath.Join(fnDir, "go.mod"), filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(fnDir, "go.sum"), filepath.Join(dir, "go.sum")); err != nil {
		t.Fatalf("modules-cleanup.sh runs `mv -f ./function/go.sum .` under set -e; the function needs a go.sum: %v", err)
	}
	var out []string
	for _, line := range strings.Split(readFile(t, filepath.Join(dir, "go.mod")), "\n") {
		// sed 's/=> \.\//=> \.\/function\//' (first match per line)
		line = strings.Replace(line, "=> ./", "=> ./function/", 1)
		// grep -v "\shandler/function"
		if handlerFunctionLine.MatchString(line) {
			continue
		}
		out = append(out, line)
	}
	writeFile(t, filepath.Join(dir, "go.mod"), strings.Join(out, "\n"))
	cmd := exec.Command(goBin, "mod", "edit", "-replace=handler/function=./function", "-module", "handler")
	cmd.Dir = dir
	cmd.Env = cleanEnv("GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod edit: %v\n%s", err, b)
	}
	gomod := readFile(t, filepath.Join(dir, "go.mod"))
	if !strings.Contains(gomod, "github.com/fintrans/fintrans/shared => ./function/shared") {
		t.Errorf("after modules-cleanup the shared module is not replaced by ./function/shared:\n%s", gomod)
	}
}

// process is a running function binary.
type process struct {
	url string
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs bin with env and waits for it to listen. Its output is logged
// when the test fails.
func start(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	p := &process{}
	cmd := exec.Command(bin)
	cmd.Env = cleanEnv(append([]string{"HANDLER_ADDR_FILE=" + addrFile, "read_timeout=60s", "write_timeout=60s"}, env...)...)
	cmd.Stdout = p
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", filepath.Base(filepath.Dir(bin)), p.logs())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.url = "http://" + string(b)
			return p
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s exited before listening: %v\n%s", bin, err, p.logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen within 60s\n%s", bin, p.logs())
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

func testDetect(t *testing.T, bin string) {
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

	p := start(t, bin, "REDIS_URL="+redis.URL, "K_SINK="+sink.URL, "LOG_LEVEL=debug")

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

func testGenerator(t *testing.T, bin string) {
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

	p := start(t, bin, "K_SINK="+sink.URL, "GENERATOR_ACCOUNTS=5", "GENERATOR_TRANSFERS=20")
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

func testViewer(t *testing.T, bin string) {
	k, err := embedded.StartKafka(1, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)

	p := start(t, bin, "KAFKA_BROKERS="+strings.Join(k.Brokers, ","), "FRAUD_TOPIC=fraud", "VIEWER_GROUP=fintrans-viewer-build-test")
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
