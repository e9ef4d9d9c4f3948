package functions_test

// stack.yml is what `faas-cli up -f stack.yml` reads. These tests decode it
// strictly into a mirror of the documented OpenFaaS stack file schema (an
// unknown or misspelt key fails), check the values faas-cli will end up with
// when no override is given, and check that each handler folder is laid out
// the way the golang-http template expects (see build_test.go for the build
// itself).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// stackFile mirrors the stack.yml schema documented for faas-cli
// (https://docs.openfaas.com/reference/yaml/).
type stackFile struct {
	Version  string `json:"version"`
	Provider struct {
		Name    string `json:"name"`
		Gateway string `json:"gateway"`
	} `json:"provider"`
	Functions     map[string]stackFunction `json:"functions"`
	Configuration *struct {
		Templates []struct {
			Name   string `json:"name"`
			Source string `json:"source"`
		} `json:"templates"`
		Copy []string `json:"copy"`
	} `json:"configuration"`
}

type stackResources struct {
	Memory string `json:"memory"`
	CPU    string `json:"cpu"`
}

type stackFunction struct {
	Lang            string            `json:"lang"`
	Handler         string            `json:"handler"`
	Image           string            `json:"image"`
	Environment     map[string]string `json:"environment"`
	EnvironmentFile []string          `json:"environment_file"`
	Secrets         []string          `json:"secrets"`
	Annotations     map[string]string `json:"annotations"`
	Labels          map[string]string `json:"labels"`
	Limits          *stackResources   `json:"limits"`
	Requests        *stackResources   `json:"requests"`
	BuildArgs       map[string]string `json:"build_args"`
	Constraints     []string          `json:"constraints"`
	// faas-cli spells it readonly_root_filesystem (stack.Function in
	// faas-cli/go-sdk), not read_only_root_filesystem.
	ReadOnlyRootFilesystem bool `json:"readonly_root_filesystem"`
}

var functionNames = []string{"detect", "generator", "viewer"}

// repoRoot is the repository root: the test runs in functions/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readStack(t *testing.T) (stackFile, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var s stackFile
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		t.Fatalf("stack.yml does not decode strictly: %v", err)
	}
	return s, data
}

// envsubst expands ${VAR}, ${VAR:-default} and ${VAR-default} the way
// faas-cli does on the whole stack file, with env as the environment.
var substRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}`)

func envsubst(s string, env map[string]string) string {
	return substRE.ReplaceAllStringFunc(s, func(m string) string {
		g := substRE.FindStringSubmatch(m)
		v, set := env[g[1]]
		switch g[2] {
		case ":-":
			if v == "" {
				return g[3]
			}
		case "-":
			if !set {
				return g[3]
			}
		}
		return v
	})
}

func TestStackDecodesStrictly(t *testing.T) {
	s, raw := readStack(t)
	// sigs.k8s.io/yaml turns the YAML float 1.0 into "1"; faas-cli reads the
	// scalar as written, so check the text too.
	if s.Version != "1" && s.Version != "1.0" || !regexp.MustCompile(`(?m)^version: ["']?1\.0["']?\s*$`).Match(raw) {
		t.Errorf("version %q, want `version: 1.0`", s.Version)
	}
	if s.Provider.Name != "openfaas" {
		t.Errorf("provider.name %q, want openfaas", s.Provider.Name)
	}
	none := map[string]string{}
	if got := envsubst(s.Provider.Gateway, none); got != "http://127.0.0.1:8080" {
		t.Errorf("provider.gateway defaults to %q, want http://127.0.0.1:8080", got)
	}
	if got := envsubst(s.Provider.Gateway, map[string]string{"OPENFAAS_URL": "https://faas.example.com"}); got != "https://faas.example.com" {
		t.Errorf("provider.gateway is not overridable by OPENFAAS_URL: %q", got)
	}
	var names []string
	for n := range s.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	if !slices.Equal(names, functionNames) {
		t.Fatalf("functions %v, want %v", names, functionNames)
	}

	// Every ${...} in the file (comments included: faas-cli substitutes the
	// whole text before parsing it) is well formed.
	if rest := substRE.ReplaceAllString(string(raw), ""); strings.Contains(rest, "${") {
		i := strings.Index(rest, "${")
		t.Errorf("malformed substitution in stack.yml near %q", rest[i:min(len(rest), i+40)])
	}
}

// keptTemplateCommit is the golang-http-template commit kept unchanged in
// ../shared/openfaas/golang-http, as its README names it. Without that
// folder the test skips locally and fails on CI.
func keptTemplateCommit(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "..", "shared", "openfaas", "README.md")
	b, err := os.ReadFile(p)
	if err != nil {
		msg := fmt.Sprintf("%s not found (expected the shared/ folder next to the repository): cannot tell which template commit stack.yml must pin", p)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (skipping: CI is not set)")
	}
	m := regexp.MustCompile("at commit\\s+`([0-9a-f]{40})`").FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s names no 40-hex commit (\"at commit `<sha>`\")", p)
	}
	return string(m[1])
}

// TestStackTemplatePinned: every function builds with the golang-http
// template at the commit that functions/build_test.go builds with, pinned in
// faas-cli's form (lang: golang-http@sha-<commit>), from the upstream
// repository.
func TestStackTemplatePinned(t *testing.T) {
	s, _ := readStack(t)
	commit := keptTemplateCommit(t)
	if s.Configuration == nil || len(s.Configuration.Templates) != 1 {
		t.Fatalf("configuration.templates must list the golang-http template once, got %+v", s.Configuration)
	}
	tpl := s.Configuration.Templates[0]
	if tpl.Name != "golang-http" {
		t.Errorf("template name %q, want golang-http", tpl.Name)
	}
	repo, ref, hasRef := strings.Cut(envsubst(tpl.Source, nil), "#")
	if repo != "https://github.com/openfaas/golang-http-template" {
		t.Errorf("template source %q, want https://github.com/openfaas/golang-http-template", tpl.Source)
	}
	if hasRef && ref != "sha-"+commit {
		t.Errorf("template source pins %q, want no ref or sha-%s", ref, commit)
	}
	for _, name := range functionNames {
		if got, want := envsubst(s.Functions[name].Lang, nil), "golang-http@sha-"+commit; got != want {
			t.Errorf("%s: lang %q, want %q (the commit kept in ../shared/openfaas)", name, got, want)
		}
	}
}

func TestStackFunctions(t *testing.T) {
	s, _ := readStack(t)
	root := repoRoot(t)
	for _, name := range functionNames {
		fn := s.Functions[name]
		t.Run(name, func(t *testing.T) {
			if lang, _, _ := strings.Cut(fn.Lang, "@"); lang != "golang-http" {
				t.Errorf("lang %q, want golang-http[@ref]", fn.Lang)
			}
			if want := "./functions/" + name; fn.Handler != want {
				t.Errorf("handler %q, want %q", fn.Handler, want)
			}
			if fi, err := os.Stat(filepath.Join(root, fn.Handler)); err != nil || !fi.IsDir() {
				t.Errorf("handler folder %s missing: %v", fn.Handler, err)
			}
			if got, want := envsubst(fn.Image, nil), "ghcr.io/fintrans/fintrans-"+name+":latest"; got != want {
				t.Errorf("image defaults to %q, want %q", got, want)
			}
			if got, want := envsubst(fn.Image, map[string]string{"REGISTRY": "r.example.com/x", "TAG": "v1"}), "r.example.com/x/fintrans-"+name+":v1"; got != want {
				t.Errorf("image with REGISTRY/TAG set is %q, want %q", got, want)
			}
			if len(fn.EnvironmentFile) != 0 {
				t.Errorf("environment_file is not used: keep the environment inline")
			}
			for k := range fn.BuildArgs {
				switch k {
				case "GO111MODULE", "GOFLAGS", "GOPROXY", "CGO_ENABLED":
				default:
					t.Errorf("build_args %s is not an ARG of the golang-http Dockerfile", k)
				}
			}
			if v := fn.BuildArgs["GO111MODULE"]; v != "" && v != "on" {
				t.Errorf("build_args GO111MODULE=%q: the function is a Go module with a replace directive; it needs modules on", v)
			}
			env := fn.Environment
			for _, k := range []string{"exec_timeout", "read_timeout", "write_timeout"} {
				if env[k] == "" {
					t.Errorf("environment %s not set", k)
				}
			}
			if env["LOG_FORMAT"] == "" {
				t.Errorf("LOG_FORMAT not set")
			}
			if _, ok := env["PORT"]; ok {
				t.Errorf("PORT must not be set: of-watchdog owns the port, the template's server listens on 8082")
			}
			expanded := func(k string) string { return envsubst(env[k], nil) }
			switch name {
			case "detect":
				if expanded("REDIS_URL") == "" {
					t.Errorf("detect needs REDIS_URL")
				}
				if expanded("KAFKA_BROKERS") == "" && expanded("K_SINK") == "" {
					t.Errorf("detect needs KAFKA_BROKERS or K_SINK")
				}
				if !slices.Equal(fn.Secrets, []string{"redis-password", "fintrans-rules"}) {
					t.Errorf("secrets %v, want [redis-password fintrans-rules]", fn.Secrets)
				}
				if env["RULES_FILE"] != "/var/openfaas/secrets/fintrans-rules" {
					t.Errorf("RULES_FILE %q, want /var/openfaas/secrets/fintrans-rules (the secret)", env["RULES_FILE"])
				}
				if env["REDIS_PASSWORD_FILE"] != "/var/openfaas/secrets/redis-password" {
					t.Errorf("REDIS_PASSWORD_FILE %q, want /var/openfaas/secrets/redis-password", env["REDIS_PASSWORD_FILE"])
				}
				if fn.Annotations["topic"] != "transactions" || fn.Annotations["topic"] != env["TRANSACTIONS_TOPIC"] {
					t.Errorf("annotation topic %q, want transactions (= TRANSACTIONS_TOPIC %q)", fn.Annotations["topic"], env["TRANSACTIONS_TOPIC"])
				}
				if _, ok := fn.Annotations["schedule"]; ok {
					t.Errorf("detect is triggered by Kafka, not by the cron-connector")
				}
			case "generator", "viewer":
				if fn.Annotations["topic"] != "cron-function" {
					t.Errorf("annotation topic %q, want cron-function", fn.Annotations["topic"])
				}
				if f := strings.Fields(fn.Annotations["schedule"]); len(f) != 5 {
					t.Errorf("annotation schedule %q is not a 5-field cron expression", fn.Annotations["schedule"])
				}
				if expanded("KAFKA_BROKERS") == "" && (name == "viewer" || expanded("K_SINK") == "") {
					t.Errorf("%s needs KAFKA_BROKERS", name)
				}
				if fn.Labels["com.openfaas.scale.max"] != "1" {
					t.Errorf("%s must run one at a time: label com.openfaas.scale.max %q", name, fn.Labels["com.openfaas.scale.max"])
				}
			}
			if name == "viewer" && env["VIEWER_GROUP"] == "" {
				t.Errorf("viewer needs VIEWER_GROUP")
			}
			// The gateway serves every function to whoever reaches it: the
			// viewer's alert data needs the token of an OpenFaaS secret.
			if name == "viewer" {
				if !slices.Equal(fn.Secrets, []string{"viewer-token"}) {
					t.Errorf("secrets %v, want [viewer-token]", fn.Secrets)
				}
				if env["VIEWER_TOKEN_FILE"] != "/var/openfaas/secrets/viewer-token" {
					t.Errorf("VIEWER_TOKEN_FILE %q, want /var/openfaas/secrets/viewer-token", env["VIEWER_TOKEN_FILE"])
				}
				if _, ok := env["VIEWER_TOKEN"]; ok {
					t.Errorf("VIEWER_TOKEN set inline: the token belongs in the secret")
				}
			}
			for _, secret := range fn.Secrets {
				if !strings.Contains(strings.Join(values(env), "\n"), "/var/openfaas/secrets/"+secret) {
					t.Errorf("secret %s is mounted but no *_FILE variable points at it", secret)
				}
			}
		})
	}
}

// TestStackStrictDecodingRejectsTypos shows the strict decoding is not
// vacuous: a misspelt key fails.
func TestStackStrictDecodingRejectsTypos(t *testing.T) {
	cases := map[string]string{
		"top level":  "version: 1.0\nprovider: {name: openfaas}\nfunctionz: {}\n",
		"function":   "version: 1.0\nfunctions:\n  f:\n    lang: golang-http\n    enviroment: {A: b}\n",
		"provider":   "version: 1.0\nprovider: {name: openfaas, gatway: http://x}\n",
		"templates":  "version: 1.0\nconfiguration:\n  templates:\n    - {name: golang-http, src: x}\n",
		"duplicate":  "version: 1.0\nfunctions:\n  f: {lang: a}\n  f: {lang: b}\n",
		"read_only":  "version: 1.0\nfunctions:\n  f:\n    read_only_root_filesystem: true\n",
		"bad limits": "version: 1.0\nfunctions:\n  f:\n    limits: {memroy: 1Mi}\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			var s stackFile
			if err := yaml.UnmarshalStrict([]byte(doc), &s); err == nil {
				t.Fatalf("UnmarshalStrict accepted %q", doc)
			}
		})
	}
	var ok stackFile
	if err := yaml.UnmarshalStrict([]byte("version: 1.0\nfunctions:\n  f:\n    lang: golang-http\n    readonly_root_filesystem: true\n"), &ok); err != nil {
		t.Fatalf("a valid stack was refused: %v", err)
	}
}

// TestHandlerFolders checks each functions/<fn> as the golang-http template
// will see it: go.mod of module handler/function that requires the shared
// module through `replace ... => ./shared` and the template SDK, a go.sum
// (the template's modules-cleanup.sh moves it and fails without one), the
// committed symlink shared -> ../../shared and handler.go with the
// template's Handle signature.
func TestHandlerFolders(t *testing.T) {
	root := repoRoot(t)
	sharedDir, err := filepath.EvalSymlinks(filepath.Join(root, "shared"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range functionNames {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, "functions", name)
			gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatalf("go.mod: %v", err)
			}
			mod := string(gomod)
			if !regexp.MustCompile(`(?m)^module handler/function\s*$`).MatchString(mod) {
				t.Errorf("go.mod must declare `module handler/function`")
			}
			if !regexp.MustCompile(`(?m)^\s*(require\s+)?github\.com/fintrans/fintrans/shared v0\.0\.0\b`).MatchString(mod) {
				t.Errorf("go.mod must require github.com/fintrans/fintrans/shared v0.0.0")
			}
			if !regexp.MustCompile(`(?m)^replace github\.com/fintrans/fintrans/shared => \./shared\s*$`).MatchString(mod) {
				t.Errorf("go.mod must have `replace github.com/fintrans/fintrans/shared => ./shared` (the template rewrites it to ./function/shared)")
			}
			if !regexp.MustCompile(`(?m)^\s*(require\s+)?github\.com/openfaas/templates-sdk/go-http v`).MatchString(mod) {
				t.Errorf("go.mod must require github.com/openfaas/templates-sdk/go-http: it replaces the template's own go.mod, whose main.go imports the SDK")
			}
			if _, err := os.Stat(filepath.Join(dir, "go.sum")); err != nil {
				t.Errorf("go.sum missing (modules-cleanup.sh runs `mv -f ./function/go.sum .` under set -e): %v", err)
			}

			link := filepath.Join(dir, "shared")
			fi, err := os.Lstat(link)
			if err != nil {
				t.Fatalf("symlink shared: %v", err)
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("functions/%s/shared must be a symlink to ../../shared, is %v", name, fi.Mode())
			}
			if target, err := os.Readlink(link); err == nil && target != "../../shared" {
				t.Errorf("functions/%s/shared -> %q, want ../../shared (relative, so it works in any clone)", name, target)
			}
			if resolved, err := filepath.EvalSymlinks(link); err != nil || resolved != sharedDir {
				t.Errorf("functions/%s/shared resolves to %q (%v), want %q", name, resolved, err, sharedDir)
			}

			src, err := os.ReadFile(filepath.Join(dir, "handler.go"))
			if err != nil {
				t.Fatalf("handler.go: %v", err)
			}
			if !regexp.MustCompile(`(?m)^package function\s*$`).Match(src) {
				t.Errorf("handler.go must be `package function`")
			}
			if !regexp.MustCompile(`(?m)^func Handle\((\w+) handler\.Request\) \(handler\.Response, error\)`).Match(src) {
				t.Errorf("handler.go must define func Handle(req handler.Request) (handler.Response, error)")
			}
			if !bytes.Contains(src, []byte(`"github.com/openfaas/templates-sdk/go-http"`)) {
				t.Errorf("handler.go must import handler \"github.com/openfaas/templates-sdk/go-http\"")
			}
			for _, skip := range []string{"build", "template"} {
				if _, err := os.Stat(filepath.Join(dir, skip)); err == nil {
					t.Errorf("functions/%s/%s would be skipped by faas-cli when copying the handler", name, skip)
				}
			}
		})
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
