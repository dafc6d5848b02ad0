// Package archtest checks the layering rule of docs/architecture.md: which
// outguard package may import which.
package archtest

import (
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/outguard/outguard"

// allowed lists, for each package, the outguard packages it may import.
// "internal/*" allows every internal package. A package missing here
// fails the test: say where it belongs in docs/architecture.md first.
var allowed = map[string][]string{
	// Leaves: the domain packages import no other outguard package except
	// internal helpers.
	"arf":            {"internal/*"},
	"baseline":       {"internal/*"},
	"campaign":       {"internal/*"},
	"config":         {"internal/*"},
	"identity":       {"internal/*"},
	"quarantine":     {"internal/*"},
	"filter/content": {"internal/*"},
	"filter":         {"filter/content", "internal/*"},
	// The feedback intake builds on the ARF parser, reads its settings'
	// types from config and takes log ids from quarantine.
	"feedback": {"arf", "config", "quarantine", "internal/*"},
	// The SMTP server knows nothing of policies' implementations.
	"smtpd": {"internal/*"},
	// The admin side (docs/architecture.md, "The admin packages"): the
	// HTTP server of metrics and health; the API's wire types, which
	// import nothing; the operations layer, which sees the domain
	// packages; its two front ends, the JSON API and the console (which
	// answers its script in the API's wire types, through the API's
	// conversions); and the fixtures of their tests. None imports app or
	// smtpd, and the API never imports the console.
	"admin":                    {},
	"admin/apiv1":              {},
	"admin/ops":                {"feedback", "filter/content", "identity", "quarantine", "internal/*"},
	"admin/api":                {"admin/apiv1", "admin/ops", "feedback", "identity", "quarantine", "internal/*"},
	"admin/console":            {"admin/api", "admin/apiv1", "admin/ops", "identity", "quarantine", "internal/*"},
	"admin/internal/admintest": {"admin/ops", "feedback", "identity", "quarantine", "internal/*"},
	// Wiring: app may import every package but cmd.
	"app": {"admin", "admin/api", "admin/console", "admin/ops", "arf", "baseline", "campaign", "config", "feedback", "filter", "filter/content", "identity", "quarantine", "smtpd", "internal/*"},
	// Commands.
	"cmd/outguard":      {"*"},
	"cmd/outguard-load": {"*"},
	"filter/train":      {"filter", "filter/content"},
	"contrib":           {},
	"internal/archtest": {},
	// Internal helpers: leaves, except the notifier, which sends lock
	// events (identity) by mail (arf's sender).
	"internal/notify": {"arf", "identity", "internal/*"},
	"internal/passwd": {"internal/*"},
	// The customer notice's template: a leaf, read by config (checks)
	// and the notifier (renders).
	"internal/notifytext": {},
	// The PostgreSQL pool and migrations: a leaf; its test harness gives
	// each test a fresh database.
	"internal/pgdb":        {},
	"internal/pgdb/pgtest": {"internal/pgdb"},
	"internal/sdnotify":    {"internal/*"},
	// The engine of outguard store copy: a leaf; the domain packages
	// declare their kinds with its types, and app lists them.
	"internal/storecopy": {},
	"internal/testutil":  {"internal/*"},
	"internal/tlsutil":   {"internal/*"},
	"internal/txid":      {"internal/*"},
}

func TestImportLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if strings.HasPrefix(pkg, "bench") {
			continue
		}
		rules, ok := allowed[pkg]
		if !ok && strings.HasPrefix(pkg, "internal/") {
			rules, ok = []string{"internal/*"}, true
		}
		if !ok {
			t.Errorf("package %s is not in the layering rule (docs/architecture.md, internal/archtest)", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !permitted(rules, dep) {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow", pkg, dep)
			}
		}
	}
}

func permitted(rules []string, dep string) bool {
	for _, r := range rules {
		if r == "*" || r == dep {
			return true
		}
		if ok, _ := path.Match(r, dep); ok && strings.HasSuffix(r, "/*") && strings.HasPrefix(dep, "internal/") {
			return true
		}
	}
	return false
}
