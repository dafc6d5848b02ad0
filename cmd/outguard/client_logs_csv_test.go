package main

import (
	"encoding/csv"
	"strings"
	"testing"
)

// TestClientLogsCSV: `outguard logs --csv` writes a header row and every
// match, across pages, in the token's scope.
func TestClientLogsCSV(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokAll, "logs", "--csv", "--limit", "1")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(logsCSVHeader, ",") {
		t.Fatalf("rows %q: want the header and the 3 records, over 3 pages of 1", rows)
	}
	ids := map[string]bool{}
	for _, r := range rows[1:] {
		ids[r[1]] = true
	}
	if !ids[e.spam] || !ids[e.clean] || !ids[e.other] {
		t.Errorf("ids %v: want all three records", ids)
	}
	code, out, _ = e.cli(cliTokOut, "logs", "--csv", "--status", "quarantined")
	rows, _ = csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != exitOK || len(rows) != 2 || rows[1][1] != e.spam || rows[1][8] != "alice@customer.example" {
		t.Errorf("scoped and filtered: exit %d, rows %q", code, rows)
	}
	if code, _, _ := e.cli(cliTokAll, "logs", "--csv", "--json"); code != exitUsage {
		t.Errorf("--csv --json: exit %d, want %d", code, exitUsage)
	}
}
