package contrib

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns the path of Prometheus's promtool (Debian package
// prometheus), skipping the test without it unless
// OUTGUARD_REQUIRE_EXTERNAL is set.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
		t.Fatal("promtool not found and OUTGUARD_REQUIRE_EXTERNAL is set (apt-get install prometheus)")
	}
	t.Skip("promtool not found (apt-get install prometheus); set OUTGUARD_REQUIRE_EXTERNAL to make this fail")
	return ""
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestEveryAlertTested checks that each alert has a promtool unit test in
// which it fires.
func TestEveryAlertTested(t *testing.T) {
	var rf ruleFile
	b, err := os.ReadFile(filepath.Join("prometheus", "outguard-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	b, err = os.ReadFile(filepath.Join("prometheus", "outguard-rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in outguard-rules.test.yml in which it fires", r.Alert)
			}
		}
	}
}

// TestPromtoolRules checks the alerting rules and runs their unit tests
// (prometheus/outguard-rules.test.yml) with promtool.
func TestPromtoolRules(t *testing.T) {
	runPromtool(t, "prometheus", "check", "rules", "outguard-rules.yml")
	runPromtool(t, "prometheus", "test", "rules", "outguard-rules.test.yml")
}

// TestPromtoolDashboardQueries has promtool parse every query of the
// Grafana dashboard: they are written into a rule file as recording
// rules, with Grafana's variables replaced by what Grafana would put
// there.
func TestPromtoolDashboardQueries(t *testing.T) {
	tool := promtool(t)
	b, err := os.ReadFile(filepath.Join("grafana", "outguard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "$node", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := grafana.Replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: query %q uses a variable this test does not know", p.Title, tg.Expr)
				continue
			}
			q, _ := json.Marshal(expr) // a JSON string is a valid YAML scalar
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d:%s\n        expr: %s\n", p.ID, tg.RefID, q)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no queries in the dashboard")
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool rejects a dashboard query: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool output:\n%s\nwant %d rules", out, n)
	}
}

// TestPromtoolDashboardNodeVariable evaluates the dashboard's transactions
// query with promtool on two scraped nodes: with the node variable set to
// one node it sums only that node's series, and with All both.
func TestPromtoolDashboardNodeVariable(t *testing.T) {
	tool := promtool(t)
	b, err := os.ReadFile(filepath.Join("grafana", "outguard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var expr string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "outguard_transactions_total") {
				expr = tg.Expr
			}
		}
	}
	if expr == "" {
		t.Fatal("no transactions query in the dashboard")
	}
	one := strings.NewReplacer("$__rate_interval", "1m", "$node", "mx1").Replace(expr)
	all := strings.NewReplacer("$__rate_interval", "1m", "$node", ".*").Replace(expr)
	dir := t.TempDir()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	rules := "groups:\n  - name: dashboard\n    rules:\n" +
		"      - record: one\n        expr: " + q(one) + "\n" +
		"      - record: all\n        expr: " + q(all) + "\n"
	// Node mx1 accepts 60 messages a minute, node mx2 120: 1/s and 2/s.
	tests := `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'outguard_transactions_total{instance="a:8025",outcome="accepted"}'
        values: '0+60x10'
      - series: 'outguard_transactions_total{instance="b:8025",outcome="accepted"}'
        values: '0+120x10'
      - series: 'outguard_node_info{instance="a:8025",node="mx1"}'
        values: '1x10'
      - series: 'outguard_node_info{instance="b:8025",node="mx2"}'
        values: '1x10'
    promql_expr_test:
      - expr: one
        eval_time: 5m
        exp_samples:
          - labels: 'one{outcome="accepted"}'
            value: 1
      - expr: all
        eval_time: 5m
        exp_samples:
          - labels: 'all{outcome="accepted"}'
            value: 3
`
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.test.yml"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "test", "rules", "rules.test.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
}
