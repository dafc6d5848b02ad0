package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
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
		if err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
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
	if code != 0 || !strings.Contains(out, "dry run: nothing written") || !strings.Contains(out, "21 records to copy") {
		t.Fatalf("dry run: exit %d, %q %q", code, out, errOut)
	}

	out, errOut, code = runCLI(t, "store", "copy", "--config", cfg, "--from", from, "--to", "postgres", "--json", "--batch", "7")
	var rep storecopy.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("copy: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "outguard store copy: 21 records in") || !strings.Contains(errOut, "20 copied, 1 skipped") {
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
	if code != 0 || !strings.Contains(out, "done: 0 copied, 20 already present, 1 skipped") || !strings.Contains(out, "quarantine.log: 1 skipped: undecodable log record") {
		t.Errorf("copy of a copy: exit %d, %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "outguard store copy: 21 records in") || !strings.Contains(errOut, "20 already present, 1 skipped") {
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

// TestStoreCopyKilled interrupts a copy (SIGINT) while it runs, then
// kills the next one (SIGKILL), and runs it a third time: each goes on
// after what the one before committed, and every record is in PostgreSQL
// once.
func TestStoreCopyKilled(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	cfg := storeConfig(t, dsn)
	const n = 3000
	src := copySourceDB(t, n)
	args := []string{"store", "copy", "--config", cfg, "--from", "bbolt:" + src, "--to", "postgres", "--batch", "5"}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var committed int64
	// run starts the copy in a child process and signals it once it
	// committed past what the runs before did.
	run := func(sig syscall.Signal) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "OUTGUARD_TEST_RUN_MAIN=1")
		var out, errOut lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		before := committed
		for deadline := time.Now().Add(2 * time.Minute); committed == before; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the copy committed nothing: %s", errOut.String())
			}
			// Before the migrations the table is missing: wait.
			pool.QueryRow(ctx, "SELECT coalesce(sum(copied), 0) FROM store_copy_progress WHERE kind = 'quarantine.log'").Scan(&committed)
		}
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		var rows int64
		var done bool
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_log), copied, done
			FROM store_copy_progress WHERE kind = 'quarantine.log'`).Scan(&rows, &committed, &done); err != nil {
			t.Fatal(err)
		}
		if done || rows >= n {
			t.Fatalf("the copy finished (%d rows) before it was stopped: the test needs a larger source", rows)
		}
		if rows != committed {
			t.Errorf("%d log records in the table, the progress row says %d", rows, committed)
		}
		t.Logf("%v: %d records of the log committed", sig, committed)
		code = -1
		if x, ok := err.(*exec.ExitError); ok && x.Exited() {
			code = x.ExitCode()
		}
		return out.String(), errOut.String(), code
	}
	out, errOut, code := run(syscall.SIGINT)
	if code != 1 || !strings.Contains(errOut, "interrupted") || !strings.Contains(errOut, "run the copy again to go on") ||
		!strings.Contains(out, "not finished (quarantine.log") {
		t.Errorf("interrupted copy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	run(syscall.SIGKILL)

	out, errOut, code = runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "done: ") {
		t.Fatalf("copy after the kill: exit %d, %q %q", code, out, errOut)
	}
	var logRows, present, copied int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_log), present, copied FROM store_copy_progress
		WHERE kind = 'quarantine.log'`).Scan(&logRows, &present, &copied); err != nil {
		t.Fatal(err)
	}
	if logRows != n || copied != n || present != 0 {
		t.Errorf("after the kill and a rerun: %d log rows, progress %d copied %d present; want %d rows, each copied once", logRows, copied, present, n)
	}
	if !regexpLine(out, fmt.Sprintf(`quarantine\.log\s+%d\s+\d+\s+0\s+1\s+\d+`, n+1)) {
		t.Errorf("the rerun's table:\n%s", out)
	}
}
