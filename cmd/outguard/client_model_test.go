package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/quarantine"
)

// fakeTeacher is the daemon's content model as the API sees it, over an
// in-memory overlay: every lesson moves the score by 4 and bumps the
// version. Stored messages are read from and marked in the real store,
// like the daemon does. err, when set, fails every call.
type fakeTeacher struct {
	store *quarantine.Store

	mu       sync.Mutex
	updates  uint64
	learned  uint64
	uploads  int
	imported []byte
	err      error
}

var _ ops.ModelTeacher = (*fakeTeacher)(nil)

func (f *fakeTeacher) LearnStored(ctx context.Context, id string, spam bool) (ops.LearnResult, error) {
	if _, err := f.store.Raw(id, quarantine.Actor{Name: "learn"}); errors.Is(err, quarantine.ErrNotQuarantined) || errors.Is(err, quarantine.ErrGone) {
		return ops.LearnResult{}, fmt.Errorf("%w: %s: the message's content is not kept", ops.ErrConflict, id)
	} else if err != nil {
		return ops.LearnResult{}, err
	}
	res, err := f.learn(spam)
	if err == nil {
		err = f.store.SetLearned(ctx, id, res.As)
	}
	return res, err
}

func (f *fakeTeacher) LearnRaw(ctx context.Context, raw []byte, spam bool) (ops.LearnResult, error) {
	f.mu.Lock()
	f.uploads++
	f.mu.Unlock()
	return f.learn(spam)
}

func (f *fakeTeacher) learn(spam bool) (ops.LearnResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ops.LearnResult{}, f.err
	}
	f.updates++
	f.learned++
	res := ops.LearnResult{As: "ham", Before: 1.5, After: -2.5, Version: f.versionLocked()}
	if spam {
		res.As, res.After = "spam", 5.5
	}
	return res, nil
}

func (f *fakeTeacher) versionLocked() string {
	if f.updates == 0 {
		return "seed-test"
	}
	return fmt.Sprintf("seed-test+%d", f.updates)
}

func (f *fakeTeacher) Info() (ops.ModelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ops.ModelInfo{}, f.err
	}
	return ops.ModelInfo{
		Overlay: content.OverlayInfo{Seed: "seed-test", Version: f.versionLocked(), Updates: f.updates, Learned: f.learned,
			Features: int(3 * f.learned), MaxFeatures: 1000},
		SeedFeatures: 12345, Trained: "the test corpus", SpamThreshold: 5, SuspectThreshold: 3,
	}, nil
}

// fakeOverlay is what Export writes and Import reads: "fake-overlay
// UPDATES LEARNED".
func (f *fakeTeacher) Export() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Appendf(nil, "fake-overlay %d %d", f.updates, f.learned), f.err
}

func (f *fakeTeacher) Import(data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var u, l uint64
	if _, err := fmt.Sscanf(string(data), "fake-overlay %d %d", &u, &l); err != nil {
		return fmt.Errorf("%w: not an overlay", ops.ErrBadRequest)
	}
	f.updates, f.learned, f.imported = max(f.updates, u)+1, l, data
	return nil
}

func (f *fakeTeacher) Reset() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates, f.learned = 0, 0
	return f.err
}

// withStdin makes os.Stdin a pipe holding s for the rest of the test.
func withStdin(t *testing.T, s string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(s)
	w.Close()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
}

func TestClientLearnFiles(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	msg := filepath.Join(dir, "missed.eml")
	if err := os.WriteFile(msg, []byte(cliRaw), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := e.cli(cliTokAll, "learn", "spam", msg)
	if code != exitOK || out != msg+": learnt as spam: score 1.50 -> 5.50 (model seed-test+1)\n" {
		t.Errorf("learn spam FILE: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	missing := filepath.Join(dir, "missing.eml")
	code, out, errs = e.cli(cliTokAll, "learn", "ham", "--json", msg, missing)
	lines := jsonLines[map[string]any](t, out)
	if code != exitFailed || len(lines) != 2 {
		t.Fatalf("learn ham --json with a missing file: exit %d, got %q; want exit 1 and two lines", code, out)
	}
	if ok := lines[0]; ok["file"] != msg || ok["as"] != "ham" || ok["before"] != 1.5 || ok["after"] != -2.5 || ok["version"] != "seed-test+2" || ok["error"] != nil {
		t.Errorf("taught line: got %v", ok)
	}
	if bad := lines[1]; bad["file"] != missing || bad["error"] != "unreadable" || !strings.Contains(fmt.Sprint(bad["detail"]), "no such file") || bad["before"] != nil {
		t.Errorf("failed line: got %v", bad)
	}
	if !strings.Contains(errs, "missing.eml") {
		t.Errorf("stderr does not name the failed file: %q", errs)
	}

	withStdin(t, cliRaw)
	if code, out, errs := e.cli(cliTokAll, "learn", "spam", "-"); code != exitOK || !strings.HasPrefix(out, "-: learnt as spam") {
		t.Errorf("learn spam -: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := e.cli(cliTokOut, "learn", "spam", msg); code != exitFailed || !strings.Contains(errs, "HTTP 403") {
		t.Errorf("upload with a domain token: exit %d, stderr %q; want 1 and 403", code, errs)
	}
	if e.teacher.uploads != 3 {
		t.Errorf("got %d uploads, want 3", e.teacher.uploads)
	}
	e.teacher.err = fmt.Errorf("%w: learning is turned off", ops.ErrConflict)
	code, out, _ = e.cli(cliTokAll, "learn", "spam", "--json", msg)
	if lines := jsonLines[map[string]any](t, out); code != exitFailed || len(lines) != 1 || lines[0]["error"] != "conflict" {
		t.Errorf("learning off: exit %d, got %q; want 1 and error conflict", code, out)
	}
}

func TestClientLearnStored(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokOut, "learn", "spam", "--id", e.spam, "--reason", "confirmed by abuse desk")
	if code != exitOK || out != e.spam+": learnt as spam: score 1.50 -> 5.50 (model seed-test+1)\n" {
		t.Fatalf("learn spam --id: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = e.cli(cliTokOut, "logs", "--status", "quarantined", "--json")
	if msgs := jsonLines[apiv1.Message](t, out); code != exitOK || len(msgs) != 1 || msgs[0].Learned != "spam" {
		t.Errorf("logs after learning: exit %d, got %+v; want the message learnt as spam", code, msgs)
	}
	if code, out, _ := e.cli(cliTokOut, "quarantine", "show", e.spam); code != exitOK || !regexpLine(out, `learnt\s+as spam`) ||
		!regexpLine(out, `band\s+spam`) || !regexpLine(out, `model\s+seed-test`) {
		t.Errorf("quarantine show: exit %d\n%s", code, out)
	}
	code, out, _ = e.cli(cliTokAll, "audit", "--action", "learn", "--json")
	if entries := jsonLines[apiv1.AuditEntry](t, out); code != exitOK || len(entries) != 1 || entries[0].Actor != "outadmin" ||
		entries[0].Reason != "confirmed by abuse desk" || entries[0].Target.Name != e.spam {
		t.Errorf("audit: exit %d, got %+v", code, entries)
	}

	// One line per id; a refused id does not stop the others.
	code, out, errs = e.cli(cliTokOut, "learn", "ham", "--id", "--json", e.clean, e.other, e.spam)
	lines := jsonLines[map[string]any](t, out)
	if code != exitFailed || len(lines) != 3 {
		t.Fatalf("learn ham --id --json: exit %d, got %q; want exit 1 and three lines", code, out)
	}
	for i, want := range []struct{ id, err string }{{e.clean, "conflict"}, {e.other, "forbidden"}, {e.spam, ""}} {
		l := lines[i]
		if l["id"] != want.id || l["as"] != "ham" || (want.err == "" && l["error"] != nil) || (want.err != "" && l["error"] != want.err) {
			t.Errorf("line %d: got %v, want id %s and error %q", i, l, want.id, want.err)
		}
		if _, hasFile := l["file"]; hasFile {
			t.Errorf("line %d of --id has a file key: %v", i, l)
		}
	}
	if !strings.Contains(errs, "HTTP 409") || !strings.Contains(errs, "HTTP 403") {
		t.Errorf("stderr lacks the refusals: %q", errs)
	}
	if code, _, errs := e.cli(cliTokAll, "learn", "spam", "--id", "not-an-id"); code != exitFailed || !strings.Contains(errs, "HTTP 404") {
		t.Errorf("bad id: exit %d, stderr %q", code, errs)
	}
}

func TestClientReleaseTeachesHam(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errs := e.cli(cliTokOut, "quarantine", "release", e.spam)
	if code != exitOK || !strings.Contains(out, "released "+e.spam) || !strings.Contains(out, "learnt as ham: score 1.50 -> -2.50 (model seed-test+1)") {
		t.Errorf("release: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = e.cli(cliTokOut, "quarantine", "show", e.spam, "--json")
	var d apiv1.MessageDetail
	if err := json.Unmarshal([]byte(out), &d); code != exitOK || err != nil || d.Message.Learned != "ham" {
		t.Errorf("show --json after release: exit %d, %q", code, out)
	}
}

func TestClientModel(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	if code, _, errs := e.cli(cliTokAll, "learn", "spam", "--id", e.spam); code != exitOK {
		t.Fatalf("learn: exit %d %s", code, errs)
	}

	code, out, errs := e.cli(cliTokOut, "model", "info")
	if code != exitOK || !regexpLine(out, `^version\s+seed-test\+1$`) || !regexpLine(out, `^seed\s+seed-test, 12345 features$`) ||
		!regexpLine(out, `^thresholds\s+spam 5\.00, suspect 3\.00$`) || !regexpLine(out, `^learnt\s+1 messages in 1 updates$`) ||
		!regexpLine(out, `^overlay\s+3 of 1000 features adjusted$`) {
		t.Errorf("info: exit %d, stderr %q\n%s", code, errs, out)
	}
	code, out, _ = e.cli(cliTokAll, "model", "info", "--json")
	var info apiv1.ModelInfo
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil || info.Overlay.Version != "seed-test+1" || strings.Count(out, "\n") != 1 {
		t.Errorf("info --json: exit %d, %q", code, out)
	}

	file := filepath.Join(dir, "overlay.bin")
	code, out, _ = e.cli(cliTokAll, "model", "export", file)
	if b, _ := os.ReadFile(file); code != exitOK || string(b) != "fake-overlay 1 1" || out != "wrote the content model's overlay to "+file+" (16 bytes)\n" {
		t.Errorf("export: exit %d, stdout %q, file %q", code, out, b)
	}
	if code, _, errs := e.cli(cliTokAll, "model", "export", file); code != exitFailed || !strings.Contains(errs, "exists") {
		t.Errorf("export over an existing file: exit %d, stderr %q; want 1", code, errs)
	}
	if code, out, _ := e.cli(cliTokAll, "model", "export", "-"); code != exitOK || out != "fake-overlay 1 1" {
		t.Errorf("export -: exit %d, stdout %q; want the overlay alone", code, out)
	}
	code, out, _ = e.cli(cliTokAll, "model", "export", filepath.Join(dir, "again.bin"), "--json")
	var exp map[string]any
	if err := json.Unmarshal([]byte(out), &exp); code != exitOK || err != nil || exp["bytes"] != 16.0 {
		t.Errorf("export --json: exit %d, %q", code, out)
	}
	if code, _, errs := e.cli(cliTokOut, "model", "export", filepath.Join(dir, "scoped.bin")); code != exitFailed || !strings.Contains(errs, "HTTP 403") {
		t.Errorf("export with a domain token: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "scoped.bin")); err == nil {
		t.Errorf("a refused export left a file behind")
	}

	code, out, _ = e.cli(cliTokAll, "model", "reset", "--yes")
	if code != exitOK || out != "reset the content model to its seed: model seed-test\n" || e.teacher.learned != 0 {
		t.Errorf("reset --yes: exit %d, %q", code, out)
	}
	code, out, errs = e.cli(cliTokAll, "model", "import", file)
	if code != exitOK || out != "imported "+file+": model seed-test+2, 1 messages learnt, 3 features adjusted\n" {
		t.Errorf("import: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, _ = e.cli(cliTokAll, "model", "reset", "--yes", "--json")
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil || info.Overlay.Updates != 0 {
		t.Errorf("reset --json: exit %d, %q", code, out)
	}
	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, []byte("not an overlay"), 0o600)
	if code, _, errs := e.cli(cliTokAll, "model", "import", junk); code != exitFailed || !strings.Contains(errs, "HTTP 400") {
		t.Errorf("import junk: exit %d, stderr %q; want 1 and 400", code, errs)
	}
	withStdin(t, "fake-overlay 7 4")
	if code, _, errs := e.cli(cliTokAll, "model", "import", "-", "--json"); code != exitOK || e.teacher.learned != 4 {
		t.Errorf("import -: exit %d, stderr %q", code, errs)
	}
	code, out, _ = e.cli(cliTokAll, "audit", "--action", "model", "--json")
	if entries := jsonLines[apiv1.AuditEntry](t, out); code != exitOK || len(entries) != 4 {
		t.Errorf("audit: exit %d, got %d model entries, want 4 (reset, import, reset, import)", code, len(entries))
	}
}

func TestClientModelResetNeedsConfirmation(t *testing.T) {
	e := newCLIEnv(t)
	withStdin(t, "y\n") // not a terminal: no prompt, however it would be answered
	code, out, errs := e.cli(cliTokAll, "model", "reset")
	if code != exitUsage || !strings.Contains(errs, "confirm with --yes") || out != "" {
		t.Errorf("reset without --yes: exit %d, stdout %q, stderr %q; want 2", code, out, errs)
	}
}
