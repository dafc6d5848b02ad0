package gosmtppatches

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// versions are the go-smtp releases the patches are for: the one go.mod
// requires and the newest.
var versions = []string{"v0.25.1", "v0.26.0"}

// patch is one change for go-smtp upstream.
type patch struct {
	// file is the patch (git diff), in this folder.
	file string
	// source and marker: a text that go-smtp's source file holds only
	// once the change is upstream.
	source, marker string
	// test is the go-smtp test the patch adds.
	test string
}

var patches = []patch{
	{"success-replies.patch", "server.go", "SuccessReply", "TestServer_SuccessReply"},
	{"bdat-reset.patch", "conn.go", "bdatDone", "TestServer_Chunking_ResetPipelined"},
}

// TestPatchAppliesAndPasses copies each go-smtp version from the module
// cache to a temporary folder, applies one patch there and runs go-smtp's
// tests under the race detector, offline: the patch applies, builds,
// keeps every existing test passing, and its own test passes. A version
// missing from the module cache is skipped, saying so.
func TestPatchAppliesAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a copy of go-smtp")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIP: git is not installed; it applies the patches")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cache := strings.TrimSpace(string(out))
	for _, p := range patches {
		for _, v := range versions {
			t.Run(p.file+"/"+v, func(t *testing.T) {
				t.Parallel()
				p.applyAndTest(t, filepath.Join(cache, "github.com", "emersion", "go-smtp@"+v), v)
			})
		}
	}
}

// applyAndTest applies p to a copy of the go-smtp sources in src (version
// v) and runs go-smtp's tests there.
func (p patch) applyAndTest(t *testing.T, src, v string) {
	file, err := filepath.Abs(p.file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "conn.go")); err != nil {
		t.Skipf("SKIP: go-smtp %s is not in the module cache (%s): go mod download github.com/emersion/go-smtp@%s", v, src, v)
	}
	dir := filepath.Join(t.TempDir(), "go-smtp")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	// The module cache is read-only; the copy must not be.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			mode := os.FileMode(0o644)
			if d.IsDir() {
				mode = 0o755
			}
			os.Chmod(p, mode)
		}
		return err
	})
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, p.source)); strings.Contains(string(b), p.marker) {
		t.Fatalf("go-smtp %s already has %s in %s: the change is upstream, drop %s", v, p.marker, p.source, p.file)
	}
	// One line of context less than git's default, so the hunks find
	// their place in both releases.
	run("git", "apply", "-C1", "--whitespace=nowarn", file)
	got := run("go", "test", "-race", "-count=1", "-v", "./...")
	for _, want := range []string{"--- PASS: " + p.test, "ok  \tgithub.com/emersion/go-smtp"} {
		if !strings.Contains(got, want) {
			t.Errorf("go test in the patched go-smtp %s: no %q in\n%s", v, want, got)
		}
	}
}
