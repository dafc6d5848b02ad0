package app

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trialTokenHash is the bcrypt hash of "trial-token" from the example
// configuration.
const trialTokenHash = "$2a$10$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"

// buildCLI builds cmd/outguard once per test binary run.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "outguard")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/outguard")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCLILockUnlockAudit runs the built binary against a running outguard:
// lock an identity with a reason, see its mail refused, list the lock,
// unlock it, see mail relayed again, and find both events in the audit.
// withAdminToken restarts e with the token trial-token (scope all) and
// returns the admin listener's URL.
func (e *env) withAdminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), `admin: {address: "127.0.0.1:0"}`, `admin:
  address: "127.0.0.1:0"
  tokens: [{name: ops, hash: "`+trialTokenHash+`", scope: all}]`, 1)
	if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	return "http://" + e.app.AdminAddr().String()
}

func TestCLILockUnlockAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	e := newEnv(t, "", "")
	server := e.withAdminToken(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		out, errs, code := runCLIBinary(t, bin, server, args...)
		return out + errs, code
	}

	if out, code := run("lock", "identity", "cli-user", "--domain", "out.example.net", "--reason", "spam run reported", "--for", "2h"); code != 0 {
		t.Fatalf("lock: exit %d\n%s", code, out)
	}
	err := e.send("a@out.example.net", testMessage("cli-user", "while locked", "hello"))
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("mail of the locked identity: %v, want 550", err)
	}
	out, code := run("locks", "--active", "--json")
	if code != 0 || !strings.Contains(out, `"cli-user"`) || !strings.Contains(out, "spam run reported") {
		t.Fatalf("locks --json: exit %d\n%s", code, out)
	}
	out, code = run("locks", "--active")
	if code != 0 || !strings.Contains(out, "cli-user") {
		t.Errorf("locks table: exit %d\n%s", code, out)
	}
	if out, code := run("unlock", "identity", "cli-user", "--domain", "out.example.net", "--reason", "customer cleaned the site"); code != 0 {
		t.Fatalf("unlock: exit %d\n%s", code, out)
	}
	if err := e.send("a@out.example.net", testMessage("cli-user", "after unlock", "hello")); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	out, code = run("audit", "--json")
	if code != 0 || !strings.Contains(out, "spam run reported") || !strings.Contains(out, "customer cleaned the site") {
		t.Errorf("audit: exit %d, want both events\n%s", code, out)
	}
	// Scripts can rely on the exit codes.
	if _, code := run("unlock", "identity", "cli-user", "--domain", "out.example.net", "--reason", "again"); code != 1 {
		t.Errorf("unlocking an unlocked identity: exit %d, want 1", code)
	}
	if _, code := run("lock", "identity", "x"); code != 2 {
		t.Errorf("lock without --reason: exit %d, want 2", code)
	}
	e.flush()
	out, code = run("logs", "--identity", "cli-user", "--json")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("logs --identity: exit %d, want 2 lines\n%s", code, out)
	}
}

// runCLIBinary runs the built CLI against the admin API at server with the
// trial token and returns its output and exit status.
func runCLIBinary(t *testing.T, bin, server string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OUTGUARD_SERVER="+server, "OUTGUARD_TOKEN=trial-token")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}
