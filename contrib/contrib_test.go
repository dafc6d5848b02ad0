// Package contrib holds files for other tools: a Grafana dashboard and
// Prometheus alerting rules. Its test checks that they parse and use only
// metrics outguard exports.
package contrib

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	// metricDef finds metric names in outguard's Go sources: every metric
	// is registered with its full name as a string literal.
	metricDef = regexp.MustCompile(`"(outguard_[a-z0-9_]+)"`)
	// metricUse finds metric names in PromQL.
	metricUse = regexp.MustCompile(`\boutguard_[a-z0-9_]+\b`)
)

// exported returns the metric names outguard's non-test Go files define.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricDef.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the Go sources; is the walk broken?", len(names))
	}
	return names
}

// unknownMetrics returns the outguard_* names in expr that outguard does
// not export (histogram series suffixes allowed).
func unknownMetrics(expr string, known map[string]bool) (used, unknown []string) {
	for _, name := range metricUse.FindAllString(expr, -1) {
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok && known[b] {
				base = b
			}
		}
		used = append(used, base)
		if !known[base] {
			unknown = append(unknown, name)
		}
	}
	return used, unknown
}

// balanced reports whether the brackets of a PromQL expression match.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inString
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestPrometheusRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("prometheus", "outguard-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("parsing the rules: %v", err)
	}
	known := exported(t)
	seen := map[string]bool{}
	var used []string
	n := 0
	for _, g := range rf.Groups {
		if g.Name == "" {
			t.Error("a group has no name")
		}
		for _, r := range g.Rules {
			n++
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || !strings.HasPrefix(r.Alert, "Outguard") {
					t.Errorf("alert %q: want a name starting with Outguard", r.Alert)
				}
				if seen[r.Alert] {
					t.Errorf("alert %q defined twice", r.Alert)
				}
				seen[r.Alert] = true
				if strings.TrimSpace(r.Expr) == "" || !balanced(r.Expr) {
					t.Errorf("expr %q is empty or unbalanced", r.Expr)
				}
				if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
					t.Errorf("for %q: want a positive duration", r.For)
				}
				if s := r.Labels["severity"]; !slices.Contains([]string{"info", "warning", "critical"}, s) {
					t.Errorf("labels.severity %q: want info, warning or critical", s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("annotations: want summary and description, got %v", r.Annotations)
				}
				u, unknown := unknownMetrics(r.Expr, known)
				if len(u) == 0 {
					t.Errorf("expr %q uses no outguard metric", r.Expr)
				}
				if len(unknown) > 0 {
					t.Errorf("expr uses metrics outguard does not export: %v", unknown)
				}
				used = append(used, u...)
			})
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	// The alerts the operators asked for.
	for _, m := range []string{"outguard_automatic_locks_total", "outguard_arf_outbox_depth", "outguard_scanner_errors_total", "outguard_nexthop_errors_total"} {
		if !slices.Contains(used, m) {
			t.Errorf("no alert on %s", m)
		}
	}
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "outguard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parsing the dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("got title %q uid %q and %d panels", d.Title, d.UID, len(d.Panels))
	}
	known := exported(t)
	var used []string
	ids := map[int]bool{}
	occupied := map[[2]int]string{}
	for _, p := range d.Panels {
		t.Run(p.Title, func(t *testing.T) {
			if p.Title == "" || p.Type == "" || ids[p.ID] {
				t.Errorf("panel %d: want a unique id, a title and a type", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("gridPos %+v: want a size within 24 columns", p.GridPos)
			}
			for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
				for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
					if other, ok := occupied[[2]int{x, y}]; ok {
						t.Fatalf("overlaps panel %q", other)
					}
					occupied[[2]int{x, y}] = p.Title
				}
			}
			if len(p.Targets) == 0 {
				t.Error("no targets")
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("target refId %q: want unique, non-empty", tg.RefID)
				}
				refs[tg.RefID] = true
				if !balanced(tg.Expr) {
					t.Errorf("expr %q is unbalanced", tg.Expr)
				}
				u, unknown := unknownMetrics(tg.Expr, known)
				if len(u) == 0 {
					t.Errorf("expr %q uses no outguard metric", tg.Expr)
				}
				if len(unknown) > 0 {
					t.Errorf("expr uses metrics outguard does not export: %v", unknown)
				}
				used = append(used, u...)
			}
		})
	}
	for _, m := range []string{
		"outguard_transactions_total", "outguard_smtp_replies_total", "outguard_verdicts_total", "outguard_scanner_errors_total",
		"outguard_locks_active", "outguard_automatic_locks_total", "outguard_arf_outbox_depth", "outguard_arf_reports_sent_total",
		"outguard_arf_reports_expired_total", "outguard_nexthop_duration_seconds", "outguard_store_commit_duration_seconds",
		"outguard_quarantine_messages",
	} {
		if !slices.Contains(used, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func TestBalanced(t *testing.T) {
	for expr, want := range map[string]bool{
		`sum(rate(x{a="b"}[5m]))`: true,
		`sum(rate(x[5m])`:         false,
		`x{a=")"}`:                true,
		`x]`:                      false,
	} {
		if got := balanced(expr); got != want {
			t.Errorf("balanced(%q): got %v, want %v", expr, got, want)
		}
	}
}
