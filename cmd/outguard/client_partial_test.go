package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// TestClientLogsPartial: `outguard logs` and `quarantine show` say when
// content went unscanned and which limits were reached.
func TestClientLogsPartial(t *testing.T) {
	e := newCLIEnv(t)
	r := &quarantine.Record{ID: quarantine.NewID(time.Now().Add(-30 * time.Minute)), User: "webhost1", Domain: cliDomOut,
		Identity: "deep@customer.example", Sender: "deep@customer.example", ClientIP: netip.MustParseAddr("192.0.2.7"),
		Subject: "Deep", Status: quarantine.StatusQuarantined, Verdict: quarantine.VerdictClean,
		Partial: []string{"max_parts"}}
	if err := e.store.Quarantine(context.Background(), r, []byte(cliRaw)); err != nil {
		t.Fatal(err)
	}
	code, out, errs := e.cli(cliTokAll, "logs", "--since", "24h")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !regexpLine(out, r.ID+`\s+quarantined\s+clean \(partial: max_parts\)\s+0\.0`) {
		t.Errorf("logs: no partial flag on %s:\n%s", r.ID, out)
	}
	if strings.Count(out, "partial:") != 1 {
		t.Errorf("logs: whole scans flagged too:\n%s", out)
	}
	code, out, _ = e.cli(cliTokAll, "logs", "--since", "24h", "--json")
	var found bool
	for _, m := range jsonLines[apiv1.Message](t, out) {
		if m.ID == r.ID {
			found = len(m.PartiallyScanned) == 1 && m.PartiallyScanned[0] == "max_parts"
		} else if len(m.PartiallyScanned) > 0 {
			t.Errorf("--json: %s flagged partially scanned", m.ID)
		}
	}
	if code != exitOK || !found {
		t.Errorf("--json: exit %d, partially_scanned of %s missing:\n%s", code, r.ID, out)
	}
	code, out, _ = e.cli(cliTokAll, "logs", "--partial", "--json")
	if got := jsonLines[apiv1.Message](t, out); code != exitOK || len(got) != 1 || got[0].ID != r.ID {
		t.Errorf("--partial: exit %d, got %+v, want only %s", code, got, r.ID)
	}
	code, out, _ = e.cli(cliTokAll, "quarantine", "show", r.ID)
	if code != exitOK || !regexpLine(out, `scanned\s+partially: max_parts reached`) {
		t.Errorf("show: exit %d\n%s", code, out)
	}
}

// TestClassifyPartial: `outguard classify` says when content lay past a
// limit, in text and in JSON.
func TestClassifyPartial(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "deep.eml")
	if err := os.WriteFile(deep, testutil.NestedMessage("Subject: deep", 30, testutil.Leaf{Body: []byte("hello")}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, "classify", deep)
	if code != 0 || !strings.Contains(out, "  partially scanned: max_depth reached\n") {
		t.Errorf("exit %d, got\n%s", code, out)
	}
	out, _, code = runCLI(t, "classify", "--json", deep, "../../testdata/ham/"+firstHam(t))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("exit %d, got\n%s", code, out)
	}
	var r [2]map[string]any
	for i := range lines {
		json.Unmarshal([]byte(lines[i]), &r[i])
	}
	if p, _ := r[0]["partially_scanned"].([]any); len(p) != 1 || p[0] != "max_depth" {
		t.Errorf("deep: partially_scanned %v, want [max_depth]", r[0]["partially_scanned"])
	}
	if _, ok := r[1]["partially_scanned"]; ok {
		t.Errorf("ham: partially_scanned present: %v", r[1])
	}
}
