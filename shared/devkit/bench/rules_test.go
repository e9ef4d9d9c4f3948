package bench

import (
	"bytes"
	"os"
	"testing"
)

// The bench's copy of the example rule set is the README's (the module
// cannot embed a file of its parent).
func TestExampleRulesAreTheREADMEs(t *testing.T) {
	b, err := os.ReadFile("../../rules/testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, exampleRules) {
		t.Fatal("example.yaml differs from shared/rules/testdata/example.yaml: copy it")
	}
}
