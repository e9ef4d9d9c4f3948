package knative_test

// The manifests under knative/ are validated offline against the JSON
// schemas kept in ../shared/schemas (Knative CRDs and core kinds, see its
// README) with kubeconform as a library, in strict mode: a misspelt or
// misplaced field fails the test. On top of the schemas the test checks what
// no schema can: that every reference (sinks, SinkBinding subjects, dead
// letter sinks, secrets) names something defined here, that each function
// gets the environment it needs, that topics and consumer groups agree with
// stack.yml, and that everything lives in namespace fintrans.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fintrans/fintrans/shared/config"
	"github.com/fintrans/fintrans/shared/rules"
	"github.com/yannh/kubeconform/pkg/resource"
	"github.com/yannh/kubeconform/pkg/validator"
	"sigs.k8s.io/yaml"
)

const (
	namespace = "fintrans"
	koImage   = "ko://github.com/fintrans/fintrans/cmd/fintrans"

	servingAPI   = "serving.knative.dev/v1"
	kafkaSinkAPI = "eventing.knative.dev/v1alpha1"
)

// repoRoot is the repository root: the test runs in knative/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// schemasDir returns ../shared/schemas next to the repository (the shared/
// folder handed to sessions and CI beside the clone). Without it the schema
// tests skip locally and fail on CI.
func schemasDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "schemas")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		msg := fmt.Sprintf("JSON schemas not found at %s (expected the shared/ folder next to the repository); cannot validate knative/ manifests", dir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg + " (skipping: CI is not set)")
	}
	return dir
}

func newValidator(t *testing.T) validator.Validator {
	t.Helper()
	loc := filepath.Join(schemasDir(t), "{{.ResourceKind}}{{.KindSuffix}}.json")
	v, err := validator.New([]string{loc}, validator.Opts{Strict: true})
	if err != nil {
		t.Fatalf("kubeconform validator: %v", err)
	}
	return v
}

// doc is one YAML document of a manifest file.
type doc struct {
	file  string // path relative to knative/
	index int    // position in the file, from 0
	raw   []byte
	obj   object
}

func (d doc) String() string {
	return fmt.Sprintf("%s#%d %s/%s", d.file, d.index, d.obj.Kind, d.obj.Metadata.Name)
}

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec       json.RawMessage   `json:"spec"`
	StringData map[string]string `json:"stringData"`
	Data       map[string]string `json:"data"`
	// kustomization.yaml
	Resources []string `json:"resources"`
}

type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
}

type destination struct {
	Ref *ref   `json:"ref"`
	URI string `json:"uri"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `json:"name"`
			Key      string `json:"key"`
			Optional bool   `json:"optional"`
		} `json:"secretKeyRef"`
		ConfigMapKeyRef *struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"configMapKeyRef"`
	} `json:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
	} `json:"httpGet"`
}

type container struct {
	Name           string   `json:"name"`
	Image          string   `json:"image"`
	Args           []string `json:"args"`
	Env            []envVar `json:"env"`
	ReadinessProbe *probe   `json:"readinessProbe"`
	LivenessProbe  *probe   `json:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
}

type volume struct {
	Name      string `json:"name"`
	ConfigMap *struct {
		Name string `json:"name"`
	} `json:"configMap"`
}

// podTemplate covers a Knative Service's and a Deployment's spec.template.
type podTemplate struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		ContainerConcurrency *int64      `json:"containerConcurrency"`
		TimeoutSeconds       *int64      `json:"timeoutSeconds"`
		Containers           []container `json:"containers"`
		Volumes              []volume    `json:"volumes"`
	} `json:"spec"`
}

type workloadSpec struct {
	Template podTemplate `json:"template"`
}

type kafkaSourceSpec struct {
	ConsumerGroup    string      `json:"consumerGroup"`
	BootstrapServers []string    `json:"bootstrapServers"`
	Topics           []string    `json:"topics"`
	InitialOffset    string      `json:"initialOffset"`
	Ordering         string      `json:"ordering"`
	Sink             destination `json:"sink"`
	Delivery         *struct {
		Retry          *int         `json:"retry"`
		BackoffPolicy  string       `json:"backoffPolicy"`
		BackoffDelay   string       `json:"backoffDelay"`
		DeadLetterSink *destination `json:"deadLetterSink"`
	} `json:"delivery"`
}

type kafkaSinkSpec struct {
	Topic            string   `json:"topic"`
	BootstrapServers []string `json:"bootstrapServers"`
	ContentMode      string   `json:"contentMode"`
}

type sinkBindingSpec struct {
	Subject ref         `json:"subject"`
	Sink    destination `json:"sink"`
}

type pingSourceSpec struct {
	Schedule string      `json:"schedule"`
	Sink     destination `json:"sink"`
}

func decodeSpec[T any](t *testing.T, d doc) T {
	t.Helper()
	var s T
	if len(d.obj.Spec) == 0 {
		t.Fatalf("%s: no spec", d)
	}
	if err := json.Unmarshal(d.obj.Spec, &s); err != nil {
		t.Fatalf("%s: decoding spec: %v", d, err)
	}
	return s
}

// manifestFiles lists every YAML file under knative/, recursively.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			files = append(files, path)
		case ".json":
			t.Errorf("%s: JSON manifests are not expected under knative/", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no YAML manifests found under knative/")
	}
	return files
}

func isKustomization(file string) bool {
	b := filepath.Base(file)
	return b == "kustomization.yaml" || b == "kustomization.yml"
}

// loadDocs splits every manifest file into its non-empty YAML documents.
func loadDocs(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	for _, f := range manifestFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
		sc.Split(resource.SplitYAMLDocument)
		i := 0
		for sc.Scan() {
			raw := append([]byte(nil), sc.Bytes()...)
			d := doc{file: f, index: i, raw: raw}
			i++
			var probe any
			if err := yaml.Unmarshal(raw, &probe); err != nil {
				t.Fatalf("%s#%d: invalid YAML: %v", f, d.index, err)
			}
			if probe == nil {
				t.Errorf("%s#%d: empty YAML document (stray ---?)", f, d.index)
				continue
			}
			if err := yaml.Unmarshal(raw, &d.obj); err != nil {
				t.Fatalf("%s#%d: %v", f, d.index, err)
			}
			docs = append(docs, d)
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return docs
}

// TestKnativeManifestsValidate runs kubeconform (strict) over every document
// under knative/. Each must come out Valid: Skipped, Error (for example no
// schema for its kind) and Invalid all fail.
func TestKnativeManifestsValidate(t *testing.T) {
	v := newValidator(t)
	docs := loadDocs(t)
	for _, d := range docs {
		t.Run(d.String(), func(t *testing.T) {
			if isKustomization(d.file) {
				// kustomize's own file has no schema here; it is checked by
				// TestKnativeKustomization instead.
				return
			}
			res := v.ValidateResource(resource.Resource{Path: d.file, Bytes: d.raw})
			if res.Status != validator.Valid {
				t.Errorf("%s: status %s (err: %v)", d, statusName(res.Status), res.Err)
				for _, ve := range res.ValidationErrors {
					t.Errorf("  %s: %s", ve.Path, ve.Msg)
				}
			}
		})
	}
}

// TestKnativeManifestsValidateWholeFiles runs the file-level entry point too
// (the path `kubeconform knative/` would take), so document splitting by
// kubeconform itself is covered.
func TestKnativeManifestsValidateWholeFiles(t *testing.T) {
	v := newValidator(t)
	for _, f := range manifestFiles(t) {
		if isKustomization(f) {
			continue
		}
		t.Run(f, func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			results := v.Validate(f, fh)
			if len(results) == 0 {
				t.Fatalf("%s: kubeconform returned no result", f)
			}
			for _, r := range results {
				if r.Status != validator.Valid {
					sig, _ := r.Resource.Signature()
					t.Errorf("%s: %+v: status %s (err: %v) %v", f, sig, statusName(r.Status), r.Err, r.ValidationErrors)
				}
			}
		})
	}
}

func statusName(s validator.Status) string {
	switch s {
	case validator.Error:
		return "Error"
	case validator.Skipped:
		return "Skipped"
	case validator.Valid:
		return "Valid"
	case validator.Invalid:
		return "Invalid"
	case validator.Empty:
		return "Empty"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// TestKnativeValidatorRejectsTypos shows that the schema check is not
// vacuous: the same validator turns down misspelt fields, missing required
// fields and kinds it has no schema for.
func TestKnativeValidatorRejectsTypos(t *testing.T) {
	v := newValidator(t)
	cases := []struct {
		name string
		yaml string
		want validator.Status
	}{
		{"service ok", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s, namespace: fintrans}
spec:
  template:
    spec:
      containers:
        - image: example.com/x
`, validator.Valid},
		{"service spec.templat", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s, namespace: fintrans}
spec:
  templat:
    spec:
      containers:
        - image: example.com/x
`, validator.Invalid},
		{"service readinesProbe", `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s, namespace: fintrans}
spec:
  template:
    spec:
      containers:
        - image: example.com/x
          readinesProbe: {httpGet: {path: /readyz}}
`, validator.Invalid},
		{"kafkasource spec.topic", `
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: k, namespace: fintrans}
spec:
  bootstrapServers: [b:9092]
  topic: transactions
  topics: [transactions]
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: detect}}
`, validator.Invalid},
		{"kafkasource without topics", `
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: k, namespace: fintrans}
spec:
  bootstrapServers: [b:9092]
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: detect}}
`, validator.Invalid},
		{"kafkasink bad contentMode", `
apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata: {name: k, namespace: fintrans}
spec:
  topic: fraud
  bootstrapServers: [b:9092]
  contentMode: text
`, validator.Invalid},
		{"pingsource sink.reff", `
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p, namespace: fintrans}
spec:
  schedule: "* * * * *"
  sink: {reff: {apiVersion: serving.knative.dev/v1, kind: Service, name: viewer}}
`, validator.Invalid},
		{"secret metadata.namespce", `
apiVersion: v1
kind: Secret
metadata: {name: s, namespce: fintrans}
stringData: {a: b}
`, validator.Invalid},
		{"unknown kind", `
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t, namespace: fintrans}
spec: {broker: default}
`, validator.Error},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := v.ValidateResource(resource.Resource{Path: c.name, Bytes: []byte(c.yaml)})
			if res.Status != c.want {
				t.Fatalf("status %s, want %s (err: %v, errors: %v)", statusName(res.Status), statusName(c.want), res.Err, res.ValidationErrors)
			}
		})
	}
	// The whole-file entry point rejects a typo as well.
	bad := "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\nspec: {templat: {}}\n"
	results := v.Validate("bad.yaml", io.NopCloser(strings.NewReader(bad)))
	if len(results) != 1 || results[0].Status != validator.Invalid {
		t.Fatalf("Validate(bad.yaml) = %+v, want one Invalid result", results)
	}
}

// TestKnativeKustomization checks a kustomization.yaml, when there is one:
// it has no schema in ../shared/schemas, so it is validated here by hand.
// It must list exactly the top-level manifests (kubectl apply -k knative/
// and kubectl apply -f knative/ must apply the same objects).
//
// Note that kubectl apply -f knative/ reads every YAML file of the folder,
// a kustomization.yaml included, and fails on it; which is why none is
// shipped today.
func TestKnativeKustomization(t *testing.T) {
	var found bool
	var top []string
	for _, f := range manifestFiles(t) {
		if isKustomization(f) {
			continue
		}
		if filepath.Dir(f) == "." {
			top = append(top, f)
		}
	}
	for _, d := range loadDocs(t) {
		if !isKustomization(d.file) {
			continue
		}
		found = true
		if d.file != "kustomization.yaml" && d.file != "kustomization.yml" {
			t.Errorf("%s: only a top-level kustomization is expected", d.file)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(d.raw, &raw); err != nil {
			t.Fatal(err)
		}
		for k := range raw {
			switch k {
			case "apiVersion", "kind", "namespace", "resources", "labels", "commonLabels", "images":
			default:
				t.Errorf("%s: unexpected field %q", d.file, k)
			}
		}
		if d.obj.Kind != "" && d.obj.Kind != "Kustomization" {
			t.Errorf("%s: kind %q", d.file, d.obj.Kind)
		}
		got := slices.Clone(d.obj.Resources)
		sort.Strings(got)
		if !slices.Equal(got, top) {
			t.Errorf("%s: resources %v, want the top-level manifests %v", d.file, got, top)
		}
	}
	if !found {
		t.Log("no kustomization.yaml (kubectl apply -f knative/ would try to apply it as an object)")
	}
}

// stackEnv reads the environment of every function in ../stack.yml.
func stackEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var stack struct {
		Functions map[string]struct {
			Environment map[string]string `json:"environment"`
			Annotations map[string]string `json:"annotations"`
		} `json:"functions"`
	}
	if err := yaml.Unmarshal(data, &stack); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	out := map[string]map[string]string{}
	for name, fn := range stack.Functions {
		env := map[string]string{}
		for k, v := range fn.Environment {
			env[k] = v
		}
		for k, v := range fn.Annotations {
			env["annotation:"+k] = v
		}
		out[name] = env
	}
	return out
}

// requiredEnv is what each entry point refuses to start without: every
// inner slice is a set of alternatives, one of which must be set.
var requiredEnv = map[string][][]string{
	"detect":    {{"REDIS_URL"}, {"K_SINK", "KAFKA_BROKERS"}},
	"generator": {{"KAFKA_BROKERS", "K_SINK"}},
	"viewer":    {{"KAFKA_BROKERS"}},
	"consume":   {{"KAFKA_BROKERS"}, {"REDIS_URL"}},
}

// TestKnativeCrossReferences checks what the schemas cannot.
func TestKnativeCrossReferences(t *testing.T) {
	docs := loadDocs(t)

	type key struct{ kind, name string }
	defined := map[key]doc{}
	byKind := map[string][]doc{}
	for _, d := range docs {
		if isKustomization(d.file) {
			continue
		}
		k := key{d.obj.Kind, d.obj.Metadata.Name}
		if prev, dup := defined[k]; dup && d.obj.Kind != "Namespace" {
			t.Errorf("%s: defined twice (also %s)", d, prev)
		}
		defined[k] = d
		byKind[d.obj.Kind] = append(byKind[d.obj.Kind], d)
	}

	for _, kind := range []string{"Namespace", "Secret", "Service", "KafkaSource", "KafkaSink", "SinkBinding", "PingSource", "Deployment"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s defined under knative/", kind)
		}
	}

	// isService reports whether r names a Knative Service defined here.
	isService := func(r *ref) bool {
		if r == nil || r.Kind != "Service" || r.APIVersion != servingAPI {
			return false
		}
		d, ok := defined[key{"Service", r.Name}]
		return ok && d.obj.APIVersion == servingAPI
	}
	isKafkaSink := func(r *ref) bool {
		if r == nil || r.Kind != "KafkaSink" || r.APIVersion != kafkaSinkAPI {
			return false
		}
		_, ok := defined[key{"KafkaSink", r.Name}]
		return ok
	}
	checkDest := func(t *testing.T, what string, dst *destination, allowSink, allowService bool) string {
		t.Helper()
		if dst == nil || dst.Ref == nil {
			t.Errorf("%s: must be a ref to a Service or KafkaSink defined in knative/ (got %+v)", what, dst)
			return ""
		}
		if dst.URI != "" {
			t.Errorf("%s: uri %q set next to ref", what, dst.URI)
		}
		if dst.Ref.Namespace != "" && dst.Ref.Namespace != namespace {
			t.Errorf("%s: ref namespace %q, want %q", what, dst.Ref.Namespace, namespace)
		}
		switch {
		case allowService && isService(dst.Ref):
		case allowSink && isKafkaSink(dst.Ref):
		default:
			t.Errorf("%s: ref %+v names no Service/KafkaSink defined in knative/", what, *dst.Ref)
			return ""
		}
		return dst.Ref.Kind + "/" + dst.Ref.Name
	}

	t.Run("namespace", func(t *testing.T) {
		for _, d := range docs {
			if isKustomization(d.file) {
				continue
			}
			if d.obj.Kind == "Namespace" {
				if d.obj.Metadata.Name != namespace {
					t.Errorf("%s: namespace %q, want %q", d, d.obj.Metadata.Name, namespace)
				}
				continue
			}
			if d.obj.Metadata.Namespace != namespace {
				t.Errorf("%s: metadata.namespace %q, want %q", d, d.obj.Metadata.Namespace, namespace)
			}
		}
		first := false
		for _, d := range byKind["Namespace"] {
			if d.file == "00-namespace.yaml" && d.obj.Metadata.Name == namespace {
				first = true
			}
		}
		if !first {
			t.Errorf("namespace %s must be defined in 00-namespace.yaml so that kubectl apply -f knative/ creates it first", namespace)
		}
	})

	// K_SINK injected by SinkBindings, by subject Service name.
	kSinkOf := map[string]string{}
	t.Run("sinkbindings", func(t *testing.T) {
		for _, d := range byKind["SinkBinding"] {
			s := decodeSpec[sinkBindingSpec](t, d)
			subj := s.Subject
			if !isService(&subj) {
				t.Errorf("%s: subject %+v is no Knative Service defined in knative/", d, subj)
				continue
			}
			if subj.Namespace != "" && subj.Namespace != namespace {
				t.Errorf("%s: subject namespace %q", d, subj.Namespace)
			}
			target := checkDest(t, d.String()+" sink", &s.Sink, true, false)
			if prev, dup := kSinkOf[subj.Name]; dup {
				t.Errorf("%s: Service %s bound twice (%s and %s)", d, subj.Name, prev, target)
			}
			kSinkOf[subj.Name] = target
		}
		if got, want := kSinkOf["detect"], "KafkaSink/fraud"; got != want {
			t.Errorf("detect's K_SINK is %q, want %q", got, want)
		}
		if got, want := kSinkOf["generator"], "KafkaSink/transactions"; got != want {
			t.Errorf("generator's K_SINK is %q, want %q", got, want)
		}
	})

	t.Run("sources", func(t *testing.T) {
		for _, d := range byKind["KafkaSource"] {
			s := decodeSpec[kafkaSourceSpec](t, d)
			if got := checkDest(t, d.String()+" sink", &s.Sink, false, true); got != "Service/detect" {
				t.Errorf("%s: sink %q, want Service/detect", d, got)
			}
			if s.ConsumerGroup == "" {
				t.Errorf("%s: consumerGroup must be explicit", d)
			}
			if s.InitialOffset != "earliest" {
				t.Errorf("%s: initialOffset %q, want earliest", d, s.InitialOffset)
			}
			if s.Ordering != "unordered" {
				t.Errorf("%s: ordering %q, want unordered", d, s.Ordering)
			}
			if s.Delivery == nil {
				t.Errorf("%s: no delivery spec", d)
				continue
			}
			if s.Delivery.Retry == nil || *s.Delivery.Retry < 1 {
				t.Errorf("%s: delivery.retry must be >= 1", d)
			}
			if s.Delivery.BackoffPolicy != "exponential" || s.Delivery.BackoffDelay == "" {
				t.Errorf("%s: want exponential backoff with a backoffDelay, got %q/%q", d, s.Delivery.BackoffPolicy, s.Delivery.BackoffDelay)
			}
			if got := checkDest(t, d.String()+" deadLetterSink", s.Delivery.DeadLetterSink, true, false); got != "KafkaSink/transactions-dlq" {
				t.Errorf("%s: deadLetterSink %q, want KafkaSink/transactions-dlq", d, got)
			}
		}
		pinged := map[string]bool{}
		for _, d := range byKind["PingSource"] {
			s := decodeSpec[pingSourceSpec](t, d)
			if s.Schedule == "" {
				t.Errorf("%s: no schedule", d)
			}
			if target := checkDest(t, d.String()+" sink", &s.Sink, false, true); target != "" {
				pinged[strings.TrimPrefix(target, "Service/")] = true
			}
		}
		for _, fn := range []string{"generator", "viewer"} {
			if !pinged[fn] {
				t.Errorf("no PingSource targets Service %s", fn)
			}
		}
	})

	// RULES_FILE of detect (Knative) and consume (plain Kubernetes) is a
	// key of a ConfigMap defined here, mounted read-only as a volume (so a
	// change reaches the running pods), and the rules in it parse.
	t.Run("rules", func(t *testing.T) {
		found := map[string]bool{}
		for _, kind := range []string{"Service", "Deployment"} {
			for _, d := range byKind[kind] {
				if kind == "Service" && d.obj.APIVersion != servingAPI {
					continue
				}
				s := decodeSpec[workloadSpec](t, d)
				for _, c := range s.Template.Spec.Containers {
					file := ""
					for _, e := range c.Env {
						if e.Name == "RULES_FILE" {
							file = e.Value
						}
					}
					if file == "" {
						continue
					}
					fn := c.Args[len(c.Args)-1]
					found[fn] = true
					mounted := false
					for _, m := range c.VolumeMounts {
						if m.MountPath != filepath.Dir(file) {
							continue
						}
						if !m.ReadOnly {
							t.Errorf("%s: the rules volume must be mounted readOnly", d)
						}
						for _, v := range s.Template.Spec.Volumes {
							if v.Name != m.Name || v.ConfigMap == nil {
								continue
							}
							cm, ok := defined[key{"ConfigMap", v.ConfigMap.Name}]
							if !ok {
								t.Errorf("%s: volume %s names ConfigMap %s, not defined in knative/", d, v.Name, v.ConfigMap.Name)
								continue
							}
							data, ok := cm.obj.Data[filepath.Base(file)]
							if !ok {
								t.Errorf("%s: ConfigMap %s has no key %s", d, v.ConfigMap.Name, filepath.Base(file))
								continue
							}
							if top, err := os.ReadFile(filepath.Join(repoRoot(t), "shared", "rules", "rules.yaml")); err != nil || !strings.HasSuffix(string(top), data) {
								t.Errorf("%s: its %s differs from shared/rules/rules.yaml (the rules of the OpenFaaS secret): %v", cm, filepath.Base(file), err)
							}
							set, err := rules.Parse([]byte(data), rules.Defaults{Threshold: 10000_00, Window: 10 * 60e9, Slide: 2 * 60e9, Lateness: 3600e9, MaxTransactions: 50})
							if err != nil {
								t.Errorf("%s: RULES_FILE %s: %v", cm, file, err)
							} else if len(set.Enabled()) != 1 || set.Enabled()[0].ID != rules.DefaultRuleID {
								t.Errorf("%s: want the seed's structuring rule alone enabled (the others switched on by an operator), got %v", cm, set.Describe())
							}
							mounted = true
						}
					}
					if !mounted {
						t.Errorf("%s: RULES_FILE %s is not in a ConfigMap volume mounted at %s", d, file, filepath.Dir(file))
					}
				}
			}
		}
		for _, fn := range []string{"detect", "consume"} {
			if !found[fn] {
				t.Errorf("%s has no RULES_FILE", fn)
			}
		}
	})

	// The viewer token's placeholder is one the viewer refuses to start with.
	for _, d := range byKind["Secret"] {
		if d.obj.Metadata.Name == "viewer-token" && d.obj.StringData["token"] != config.ViewerTokenPlaceholder {
			t.Errorf("%s: token %q: keep the placeholder %q the viewer refuses (the real token is created by hand)", d, d.obj.StringData["token"], config.ViewerTokenPlaceholder)
		}
	}

	secretKeys := map[string]map[string]bool{}
	for _, d := range byKind["Secret"] {
		keys := map[string]bool{}
		for k := range d.obj.StringData {
			keys[k] = true
		}
		for k := range d.obj.Data {
			keys[k] = true
		}
		secretKeys[d.obj.Metadata.Name] = keys
	}

	// envOf collects the variables a container gets, K_SINK included when a
	// SinkBinding injects it; it checks every secret reference on the way.
	envOf := func(t *testing.T, d doc, c container, bound string) map[string]string {
		env := map[string]string{}
		for _, e := range c.Env {
			if _, dup := env[e.Name]; dup {
				t.Errorf("%s: env %s set twice", d, e.Name)
			}
			switch {
			case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
				r := e.ValueFrom.SecretKeyRef
				if keys, ok := secretKeys[r.Name]; !ok || !keys[r.Key] {
					t.Errorf("%s: env %s refers to secret %s key %s, not defined in knative/", d, e.Name, r.Name, r.Key)
				}
				if r.Optional && strings.HasPrefix(e.Name, "VIEWER_TOKEN") {
					t.Errorf("%s: env %s must not be optional: a missing secret would leave the alert data open", d, e.Name)
				}
				env[e.Name] = "secret:" + r.Name + "/" + r.Key
			case e.ValueFrom != nil:
				t.Errorf("%s: env %s: only literal values and secretKeyRef are expected", d, e.Name)
			default:
				env[e.Name] = e.Value
			}
		}
		if bound != "" {
			if _, ok := env["K_SINK"]; ok {
				t.Errorf("%s: K_SINK set by hand and by a SinkBinding", d)
			}
			env["K_SINK"] = bound
		}
		return env
	}
	checkRequired := func(t *testing.T, d doc, fn string, env map[string]string) {
		req, ok := requiredEnv[fn]
		if !ok {
			t.Errorf("%s: unknown function %q", d, fn)
			return
		}
		for _, alts := range req {
			ok := false
			for _, name := range alts {
				if v, set := env[name]; set && v != "" {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: %s needs %s set", d, fn, strings.Join(alts, " or "))
			}
		}
	}

	stack := stackEnv(t)
	servicesEnv := map[string]map[string]string{}

	t.Run("services", func(t *testing.T) {
		want := []string{"detect", "generator", "viewer"}
		var got []string
		for _, d := range byKind["Service"] {
			if d.obj.APIVersion != servingAPI {
				continue
			}
			got = append(got, d.obj.Metadata.Name)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("Knative Services %v, want %v", got, want)
		}
		for _, d := range byKind["Service"] {
			name := d.obj.Metadata.Name
			s := decodeSpec[workloadSpec](t, d)
			if len(s.Template.Spec.Containers) != 1 {
				t.Errorf("%s: want exactly one container", d)
				continue
			}
			c := s.Template.Spec.Containers[0]
			if c.Image != koImage {
				t.Errorf("%s: image %q, want %q", d, c.Image, koImage)
			}
			if !slices.Equal(c.Args, []string{"serve", name}) {
				t.Errorf("%s: args %q, want [serve %s]", d, c.Args, name)
			}
			if c.Name != "" && c.Name != "user-container" {
				t.Errorf("%s: container named %q; the README's kubectl logs -c user-container needs the default name", d, c.Name)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: readinessProbe must be httpGet /readyz", d)
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: livenessProbe must be httpGet /healthz", d)
			}
			env := envOf(t, d, c, kSinkOf[name])
			if _, ok := env["PORT"]; ok {
				t.Errorf("%s: PORT is reserved by Knative Serving (it sets it)", d)
			}
			checkRequired(t, d, name, env)
			servicesEnv[name] = env

			// Exposure (SPEC section 6): only the viewer is public, and its
			// alert data needs the token of a Secret defined here.
			visibility := d.obj.Metadata.Labels["networking.knative.dev/visibility"]
			switch name {
			case "detect", "generator":
				if visibility != "cluster-local" {
					t.Errorf("%s: label networking.knative.dev/visibility %q, want cluster-local (reached only by the sources inside the cluster)", d, visibility)
				}
			case "viewer":
				token, ok := env["VIEWER_TOKEN"]
				if file, fok := env["VIEWER_TOKEN_FILE"]; fok {
					token, ok = file, fok
				}
				if !ok || !strings.HasPrefix(token, "secret:") {
					t.Errorf("%s: the public viewer needs VIEWER_TOKEN from a Secret (secretKeyRef), got %q", d, token)
				}
			}
			if name != "detect" && env["MAX_CLOCK_SKEW"] != "" {
				t.Errorf("%s: MAX_CLOCK_SKEW only matters to detect", d)
			}

			ann := s.Template.Metadata.Annotations
			cc := s.Template.Spec.ContainerConcurrency
			switch name {
			case "detect":
				if ann["autoscaling.knative.dev/max-scale"] == "" || ann["autoscaling.knative.dev/max-scale"] == "1" {
					t.Errorf("%s: detect must scale out (max-scale > 1), got %q", d, ann["autoscaling.knative.dev/max-scale"])
				}
				if ann["autoscaling.knative.dev/min-scale"] != "1" {
					t.Errorf("%s: detect min-scale %q, want 1", d, ann["autoscaling.knative.dev/min-scale"])
				}
			default:
				if ann["autoscaling.knative.dev/max-scale"] != "1" || cc == nil || *cc != 1 {
					t.Errorf("%s: %s must run one request at a time (max-scale 1, containerConcurrency 1)", d, name)
				}
			}
			// Variables set on both sides must agree with stack.yml.
			for k, v := range env {
				// (RULES_FILE is where each platform mounts the rules: a
				// ConfigMap volume here, a secret on OpenFaaS.)
				if sv, ok := stack[name][k]; ok && k != "RULES_FILE" && !strings.HasPrefix(v, "secret:") && !strings.Contains(sv, "${") && sv != v {
					t.Errorf("%s: %s=%q but stack.yml has %q", d, k, v, sv)
				}
			}
		}
	})

	t.Run("consume deployment", func(t *testing.T) {
		for _, d := range byKind["Deployment"] {
			s := decodeSpec[workloadSpec](t, d)
			for _, c := range s.Template.Spec.Containers {
				if c.Image != koImage {
					t.Errorf("%s: image %q, want %q", d, c.Image, koImage)
				}
				if !slices.Equal(c.Args, []string{"consume"}) {
					t.Errorf("%s: args %q, want [consume]", d, c.Args)
				}
				env := envOf(t, d, c, "")
				checkRequired(t, d, "consume", env)
				servicesEnv["consume:"+d.obj.Metadata.Name] = env
			}
			if !strings.HasPrefix(d.file, "plain-kubernetes"+string(filepath.Separator)) {
				t.Errorf("%s: the consume Deployment belongs in plain-kubernetes/ (kubectl apply -f knative/ must not start it next to the KafkaSource)", d)
			}
		}
	})

	t.Run("topics and groups", func(t *testing.T) {
		// The topics of stack.yml, by variable.
		stackTopics := map[string]string{}
		for fn, env := range stack {
			for _, k := range []string{"TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC", "CONSUMER_GROUP", "VIEWER_GROUP"} {
				v, ok := env[k]
				if !ok {
					continue
				}
				if prev, seen := stackTopics[k]; seen && prev != v {
					t.Errorf("stack.yml: %s is %q for %s but %q elsewhere", k, v, fn, prev)
				}
				stackTopics[k] = v
			}
		}
		for _, k := range []string{"TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC", "CONSUMER_GROUP", "VIEWER_GROUP"} {
			if stackTopics[k] == "" {
				t.Errorf("stack.yml sets no %s", k)
			}
		}
		if got := stack["detect"]["annotation:topic"]; got != stackTopics["TRANSACTIONS_TOPIC"] {
			t.Errorf("stack.yml: detect's topic annotation %q, TRANSACTIONS_TOPIC %q", got, stackTopics["TRANSACTIONS_TOPIC"])
		}

		sinkTopic := map[string]string{}
		var knativeTopics []string
		bootstrap := map[string]bool{}
		for _, d := range byKind["KafkaSink"] {
			s := decodeSpec[kafkaSinkSpec](t, d)
			sinkTopic[d.obj.Metadata.Name] = s.Topic
			knativeTopics = append(knativeTopics, s.Topic)
			for _, b := range s.BootstrapServers {
				bootstrap[b] = true
			}
			if d.obj.Metadata.Name == "fraud" && s.ContentMode != "binary" {
				t.Errorf("%s: contentMode %q, want binary", d, s.ContentMode)
			}
		}
		for _, d := range byKind["KafkaSource"] {
			s := decodeSpec[kafkaSourceSpec](t, d)
			knativeTopics = append(knativeTopics, s.Topics...)
			for _, b := range s.BootstrapServers {
				bootstrap[b] = true
			}
			if !slices.Equal(s.Topics, []string{stackTopics["TRANSACTIONS_TOPIC"]}) {
				t.Errorf("%s: topics %v, want [%s] (stack.yml TRANSACTIONS_TOPIC)", d, s.Topics, stackTopics["TRANSACTIONS_TOPIC"])
			}
			if s.ConsumerGroup != stackTopics["CONSUMER_GROUP"] {
				t.Errorf("%s: consumerGroup %q, stack.yml CONSUMER_GROUP %q", d, s.ConsumerGroup, stackTopics["CONSUMER_GROUP"])
			}
		}
		wantSinks := map[string]string{
			"fraud":            stackTopics["FRAUD_TOPIC"],
			"transactions":     stackTopics["TRANSACTIONS_TOPIC"],
			"transactions-dlq": stackTopics["DLQ_TOPIC"],
		}
		for name, topic := range wantSinks {
			if got, ok := sinkTopic[name]; !ok || got != topic {
				t.Errorf("KafkaSink %s: topic %q, want %q (stack.yml)", name, got, topic)
			}
		}
		var stackSet []string
		for _, k := range []string{"TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC"} {
			stackSet = append(stackSet, stackTopics[k])
		}
		sort.Strings(stackSet)
		knativeTopics = uniqSorted(knativeTopics)
		if !slices.Equal(knativeTopics, uniqSorted(stackSet)) {
			t.Errorf("topics in knative/ %v, in stack.yml %v", knativeTopics, stackSet)
		}

		// Environment of the workloads: same topic names, groups and brokers.
		for who, env := range servicesEnv {
			for _, k := range []string{"TRANSACTIONS_TOPIC", "FRAUD_TOPIC", "DLQ_TOPIC", "CONSUMER_GROUP", "VIEWER_GROUP"} {
				if v, ok := env[k]; ok && v != stackTopics[k] {
					t.Errorf("%s: %s=%q, stack.yml %q", who, k, v, stackTopics[k])
				}
			}
			if b, ok := env["KAFKA_BROKERS"]; ok {
				for _, p := range strings.Split(b, ",") {
					bootstrap[strings.TrimSpace(p)] = true
				}
			}
		}
		if len(bootstrap) != 1 {
			t.Errorf("knative/ uses several Kafka bootstrap addresses %v; keep one (documented) placeholder", keys(bootstrap))
		}
	})
}

func uniqSorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
