package app_test

// RULES_FILE changed under a running detect, the way Kubernetes updates a
// mounted ConfigMap (the ..data symlink swapped to a new directory): the
// next transfers are judged by the new rules; a bad change keeps them and
// is counted.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fintrans/fintrans/shared/app"
	"github.com/fintrans/fintrans/shared/codec/cloudevent"
	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/detect"
	"github.com/fintrans/fintrans/shared/logging"
	"github.com/fintrans/fintrans/shared/redistest"
	"github.com/fintrans/fintrans/shared/server"
	"github.com/fintrans/fintrans/shared/transfer"
)

// configMap is a directory laid out as the kubelet mounts a ConfigMap:
// rules.yaml -> ..data/rules.yaml, ..data -> ..<version>.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func (c *configMap) write(content string) (version string) {
	c.t.Helper()
	c.n++
	v := "..v" + strconv.Itoa(c.n)
	if err := os.Mkdir(filepath.Join(c.dir, v), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, v, "rules.yaml"), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(v, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if c.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(c.dir, "rules.yaml")); err != nil {
			c.t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:6])
}

func TestRulesFileChangedAtRuntime(t *testing.T) {
	srv := redistest.Start(t)
	ks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	t.Cleanup(ks.Close)
	cm := &configMap{t: t, dir: t.TempDir()}
	v1 := cm.write(`rules:
  - {id: big-pair, groupBy: pair, aggregate: sum, threshold: 100, window: 4m, slide: 4m}
`)
	cfg, err := config.FromMap(map[string]string{"REDIS_URL": srv.URL, "K_SINK": ks.URL,
		"RULES_FILE": filepath.Join(cm.dir, "rules.yaml"), "RULES_RELOAD_INTERVAL": "100ms"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := app.New(context.Background(), "detect", cfg, logging.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	web := httptest.NewServer(server.Mux(f.Handler, f.Ready))
	t.Cleanup(web.Close)

	start := time.Date(2017, 7, 23, 1, 0, 0, 0, time.UTC)
	send := func(id, from, to, amount string) []detect.AlertBrief {
		t.Helper()
		h := map[string]string{"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Type": cloudevent.TransactionType,
			"Ce-Id": id, "Ce-Source": "/reload", "Ce-Time": start.Add(time.Minute).Format(time.RFC3339)}
		a := do(t, "POST", web.URL, h, `{"from":"`+from+`","to":"`+to+`","amount":"`+amount+`"}`)
		var ans detect.Answer
		if a.code != 200 || json.Unmarshal([]byte(a.body), &ans) != nil || ans.Counted != 1 {
			t.Fatalf("POST %s: %d %s", id, a.code, a.body)
		}
		return ans.Alerts
	}
	inForce := func(version string) bool {
		_, text := get(t, web.URL+"/metrics")
		return strings.Contains(text, `fintrans_rules_info{source="`+cfg.RulesFile+`",version="`+version+`"} 1`)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("not seen: %s", what)
			}
		}
	}
	if !inForce(v1) {
		t.Fatal("the rules in force are not on /metrics")
	}
	if as := send("t1", "A", "B", "100.01"); len(as) != 1 || as[0].Rule != "big-pair" || as[0].Subject != "A->B" ||
		as[0].ID != transfer.RuleAlertID("big-pair", "pair", "A", "B", start) {
		t.Fatalf("v1: %+v", as)
	}

	// v2: the pair rule gone, a receiver count in.
	v2 := cm.write(`rules:
  - {id: fan-in, groupBy: to, aggregate: count, threshold: 1, window: 4m, slide: 4m}
`)
	waitFor("rules v2 in force", func() bool { return inForce(v2) })
	if as := send("t2", "C", "D", "100.01"); len(as) != 0 {
		t.Fatalf("v2, one transfer into D: %+v", as)
	}
	as := send("t3", "E", "D", "0.01")
	if len(as) != 1 || as[0].Rule != "fan-in" || as[0].Subject != "to:D" || as[0].Value != "2" ||
		as[0].ID != transfer.RuleAlertID("fan-in", "to", "", "D", start) {
		t.Fatalf("v2, a second transfer into D: %+v", as)
	}

	// A bad change is refused and counted; v2 stays in force.
	errorsBefore := metric(t, web.URL, "fintrans_rules_reload_errors_total")
	cm.write("rules:\n  - {id: fan-in, groupBy: everyone, aggregate: count, threshold: 1, window: 4m, slide: 4m}\n")
	waitFor("the bad change counted", func() bool { return metric(t, web.URL, "fintrans_rules_reload_errors_total") > errorsBefore })
	if !inForce(v2) {
		t.Fatal("a bad change replaced the rules in force")
	}
	if as := send("t4", "F", "D", "0.01"); len(as) != 0 {
		t.Fatalf("v2 after the bad change: the window's alert fires once, got %+v", as)
	}
	if as := send("t5", "F", "G", "0.01"); len(as) != 0 {
		t.Fatalf("v2 after the bad change: %+v", as)
	}
	if as := send("t6", "H", "G", "0.01"); len(as) != 1 || as[0].Subject != "to:G" {
		t.Fatalf("v2 after the bad change, fan-in into G: %+v", as)
	}
}

func get(t *testing.T, target string) (int, string) {
	a := do(t, "GET", target, nil, "")
	return a.code, a.body
}

func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, text := get(t, base+"/metrics")
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// `fintrans replay` judges a file by RULES_FILE too.
func TestReplayTakesRulesFile(t *testing.T) {
	srv := redistest.Start(t)
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - {id: velocity, groupBy: from, aggregate: count, threshold: 2, window: 4m, slide: 4m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.FromMap(map[string]string{"REDIS_URL": srv.URL, "RULES_FILE": file})
	if err != nil {
		t.Fatal(err)
	}
	in := strings.NewReader("2017-07-23T01:00:00Z;66;1;5\n2017-07-23T01:01:00Z;66;2;5\n2017-07-23T01:02:00Z;66;3;5\n2017-07-23T01:02:30Z;67;3;5\n")
	var out, errs strings.Builder
	sum, err := app.Replay(context.Background(), cfg, logging.New(cfg), in, "file://seed", &out, &errs)
	if err != nil || sum.Counted != 4 || sum.Alerts != 1 {
		t.Fatalf("%v %s %s", err, sum, errs.String())
	}
	for _, want := range []string{`"rule":"velocity"`, `"groupBy":"from"`, `"from":"66"`, `"value":3,`, `"subject":"from:66"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s not in %s", want, out.String())
		}
	}
}
