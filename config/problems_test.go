package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestParseReportsEveryProblem checks that one run reports the type errors,
// the unknown key and the validation failures of a file together, each with
// its line, key path and fix, in the order of the file.
func TestParseReportsEveryProblem(t *testing.T) {
	b, err := os.ReadFile("testdata/several-problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if c != nil || err == nil {
		t.Fatalf("Parse = %v, %v; want problems", c, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("err %v does not match ErrInvalid", err)
	}
	got := ProblemsOf(err)
	want := []struct {
		line    int
		path    string
		message string
		fix     string
	}{
		{5, "listeners[0].tls", `tls "sometimes"`, "use none, starttls or implicit"},
		{8, "limits.max_recipients", `"lots" is not a whole number`, "whole number"},
		{9, "limits.max_mesage_bytes", `unknown key "max_mesage_bytes"`, "max_message_bytes"},
		{16, "domains[0].users[0].networks", `network "192.0.2.0/33" is not a CIDR prefix`, "192.0.2.0/24"},
		{19, "identity.thresholds.spam", `"five" is not a whole number`, "e.g. 5"},
		{20, "identity.thresholds.window", `invalid duration "1 hour"`, `"10m"`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		p := got[i]
		if p.Line != w.line || p.Path != w.path || !strings.Contains(p.Message, w.message) || !strings.Contains(p.Fix, w.fix) {
			t.Errorf("problem %d = %+v, want line %d, path %s, message with %q, fix with %q", i, p, w.line, w.path, w.message, w.fix)
		}
	}
	// One problem a line in the error's text.
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("error text has %d lines, want %d:\n%v", n, len(want), err)
	}
}

// TestProblemJSONShape pins the JSON form of a problem that check-config
// --json prints.
func TestProblemJSONShape(t *testing.T) {
	b, err := json.Marshal(Problem{Line: 3, Path: "limits.max_recipients", Message: `"x" is not a whole number`, Fix: "expected a whole number"})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"line":3,"path":"limits.max_recipients","message":"\"x\" is not a whole number","fix":"expected a whole number"}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// TestDecodeProblemDoesNotCascade checks that a value removed for its type
// does not also produce the validation error of its default or empty item.
func TestDecodeProblemDoesNotCascade(t *testing.T) {
	doc := sectionBase + "  - just a string\n"
	doc = strings.Replace(doc, "listeners:\n", "listeners:\n  - 42\n", 1)
	_, err := Parse([]byte(doc))
	got := ProblemsOf(err)
	if len(got) != 2 || got[0].Path != "listeners[0]" || got[1].Path != "domains[1]" {
		t.Fatalf("got %v, want exactly the two items of the wrong type", err)
	}
}

// TestProblemsOfPlainError keeps an error without problems as one.
func TestProblemsOfPlainError(t *testing.T) {
	got := ProblemsOf(errors.New("open x: no such file"))
	if len(got) != 1 || got[0].Message != "open x: no such file" || got[0].Line != 0 {
		t.Errorf("got %+v", got)
	}
	if ProblemsOf(nil) != nil {
		t.Error("ProblemsOf(nil) is not nil")
	}
}
