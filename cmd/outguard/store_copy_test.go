package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/storecopy"
	"github.com/outguard/outguard/quarantine"
)

// copySourceDB writes a bbolt database with n log records of a node, and
// one log record that does not decode, and returns its path.
func copySourceDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outguard.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := quarantine.New(db, quarantine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := range n {
		rec := &quarantine.Record{ID: quarantine.NewID(at.Add(time.Duration(i) * time.Minute)), Time: at.Add(time.Duration(i) * time.Minute),
			Domain: "out.example.net", User: "trial", Identity: "web42", Sender: "a@out.example.net", Subject: "hello",
			Status: quarantine.StatusAccepted, Verdict: quarantine.VerdictClean}
		if err := s.AppendWait(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	s.Stop()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("quarantine.log")).Put([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), []byte("not a record"))
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreCopyVerb(t *testing.T) {
	cfg := storeConfig(t, pgtest.NewDatabase(t))
	src := copySourceDB(t, 20)
	from := "bbolt:" + src

	out, errOut, code := runCLI(t, "store", "copy", "--config", cfg, "--from", from, "--to", "postgres", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: nothing written") || !strings.Contains(out, "39 records to copy") {
		t.Fatalf("dry run: exit %d, %q %q", code, out, errOut)
	}

	out, errOut, code = runCLI(t, "store", "copy", "--config", cfg, "--from", from, "--to", "postgres", "--json", "--batch", "7")
	var rep storecopy.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("copy: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "outguard store copy: 39 records in") || !strings.Contains(errOut, "38 copied, 1 skipped") {
		t.Errorf("stderr %q, want the summary line", errOut)
	}
	var log storecopy.Count
	for _, c := range rep.Kinds {
		if c.Kind == "quarantine.log" {
			log = c
		}
	}
	if log.Total != 21 || log.Copied != 20 || log.Skipped != 1 || log.Reasons["undecodable log record"] != 1 || !log.Done {
		t.Errorf("quarantine.log: %+v; want 21 records, 20 copied, 1 skipped as undecodable", log)
	}

	out, errOut, code = runCLI(t, "store", "copy", "--config", cfg, "--from", from, "--to", "postgres")
	if code != 0 || !strings.Contains(out, "done: 0 copied, 0 already present, 0 skipped") {
		t.Errorf("second copy: exit %d, %q %q; want nothing copied", code, out, errOut)
	}
	if !regexpLine(out, `quarantine\.log\s+21\s+0\s+0\s+0\s+21`) {
		t.Errorf("second copy's table does not count 21 records done earlier:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("stderr %q: no bar or summary when not a terminal and nothing to do", errOut)
	}

	// The same records from another file: all present.
	other := filepath.Join(t.TempDir(), "copy.db")
	b, _ := os.ReadFile(src)
	os.WriteFile(other, b, 0o600)
	out, errOut, code = runCLI(t, "store", "copy", "--config", cfg, "--from", "bbolt:"+other, "--to", "postgres")
	if code != 0 || !strings.Contains(out, "done: 0 copied, 38 already present, 1 skipped") || !strings.Contains(out, "quarantine.log: 1 skipped: undecodable log record") {
		t.Errorf("copy of a copy: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "outguard store copy: 39 records in") || !strings.Contains(errOut, "38 already present, 1 skipped") {
		t.Errorf("stderr %q, want the summary line", errOut)
	}

	// A running node holds its file.
	db, err := bolt.Open(src, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "store", "copy", "--config", cfg, "--from", from, "--to", "postgres", "--wait", "100ms")
	db.Close()
	if code != 1 || !strings.Contains(errOut, "open by another process") || !strings.Contains(errOut, "stop it first") {
		t.Errorf("live node: exit %d, %q; want 1 and how to stop it", code, errOut)
	}
}

func TestStoreCopyVerbErrors(t *testing.T) {
	dir := t.TempDir()
	bbolt := filepath.Join(dir, "bbolt.yaml")
	base, _ := os.ReadFile("../../config/testdata/minimal.yaml")
	os.WriteFile(bbolt, base, 0o600)
	pg := storeConfig(t, "host=127.0.0.1 port=1 user=x dbname=x sslmode=disable connect_timeout=2")
	src := filepath.Join(dir, "outguard.db")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no --from", []string{"store", "copy", "--config", pg, "--to", "postgres"}, 2, "--from bbolt:PATH is required"},
		{"--from without bbolt:", []string{"store", "copy", "--config", pg, "--from", src, "--to", "postgres"}, 2, "--from bbolt:PATH"},
		{"no --to", []string{"store", "copy", "--config", pg, "--from", "bbolt:" + src}, 2, "--to postgres is required"},
		{"--to elsewhere", []string{"store", "copy", "--config", pg, "--from", "bbolt:" + src, "--to", "mysql"}, 2, "--to postgres"},
		{"a migrate flag", []string{"store", "copy", "--config", pg, "--from", "bbolt:" + src, "--to", "postgres", "--status"}, 2, "--status is not a flag of copy"},
		{"a copy flag to migrate", []string{"store", "migrate", "--config", pg, "--dry-run"}, 2, "--dry-run is not a flag of migrate"},
		{"bbolt backend", []string{"store", "copy", "--config", bbolt, "--from", "bbolt:" + src, "--to", "postgres"}, 2, "store.backend bbolt"},
		{"missing file", []string{"store", "copy", "--config", pg, "--from", "bbolt:" + src, "--to", "postgres"}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, output %q; want exit %d containing %q", code, out+errOut, tc.code, tc.want)
			}
		})
	}
}
