package gosmtpreplies

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// versions are the go-smtp releases the patch is for: the one go.mod
// requires and the newest.
var versions = []string{"v0.25.1", "v0.26.0"}

// TestPatchAppliesAndPasses copies each go-smtp version from the module
// cache to a temporary folder, applies success-replies.patch there and
// runs go-smtp's tests, offline: the patch applies, builds, keeps every
// existing test passing, and its own test (TestServer_SuccessReply)
// passes. A version missing from the module cache is skipped, saying so.
func TestPatchAppliesAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a copy of go-smtp")
	}
	patch, err := filepath.Abs("success-replies.patch")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIP: git is not installed; it applies the patch")
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	cache := strings.TrimSpace(string(out))
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			src := filepath.Join(cache, "github.com", "emersion", "go-smtp@"+v)
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
			// Without the patch, go-smtp has no such option.
			if b, _ := os.ReadFile(filepath.Join(dir, "server.go")); strings.Contains(string(b), "SuccessReply") {
				t.Fatalf("go-smtp %s already has SuccessReply: the patch is upstream, drop it", v)
			}
			// One line of context less than git's default, so the hunks
			// find their place in both releases.
			run("git", "apply", "-C1", "--whitespace=nowarn", patch)
			got := run("go", "test", "-count=1", "-v", "./...")
			for _, want := range []string{"--- PASS: TestServer_SuccessReply", "ok  \tgithub.com/emersion/go-smtp"} {
				if !strings.Contains(got, want) {
					t.Errorf("go test in the patched go-smtp %s: no %q in\n%s", v, want, got)
				}
			}
		})
	}
}
