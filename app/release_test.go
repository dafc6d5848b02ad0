package app

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// TestReleasedShowsInLogs runs the built CLI against a running outguard:
// a quarantined message, released with `quarantine release`, is listed by
// `outguard logs` as released (and no longer as quarantined), with who
// released it, when and why, and the copy
// the next hop gets carries outguard's Received field naming the log id.
func TestReleasedShowsInLogs(t *testing.T) {
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
	msg := testMessage("rel-cli", "release me", gtube)
	id := idOf(t, e.send("a@out.example.net", msg))
	if out, code := run("quarantine", "release", id, "--reason", "false positive"); code != 0 {
		t.Fatalf("release: exit %d\n%s", code, out)
	}
	e.flush()

	status := func(args ...string) []string {
		t.Helper()
		out, code := run(append([]string{"logs", "--identity", "rel-cli", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("logs %v: exit %d\n%s", args, code, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var r struct{ ID, Status string }
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v in %q", err, l)
			}
			got = append(got, r.ID+" "+r.Status)
		}
		return got
	}
	if got := status(); len(got) != 1 || got[0] != id+" released" {
		t.Errorf("logs: %v, want %s released", got, id)
	}
	if got := status("--status", "released"); len(got) != 1 {
		t.Errorf("logs --status released: %v, want the message", got)
	}
	if got := status("--status", "quarantined"); len(got) != 0 {
		t.Errorf("logs --status quarantined: %v, want nothing", got)
	}
	out, code := run("logs", "--identity", "rel-cli")
	if code != 0 || !regexp.MustCompile(`(?m)^releases:\n  `+id+` released by ops at \S+ \S+ UTC: false positive; `).MatchString(out) {
		t.Errorf("logs table: exit %d, want the release with who, when and the reason below it\n%s", code, out)
	}
	out, _ = run("logs", "--identity", "rel-cli", "--json")
	if !strings.Contains(out, `"released_by":"ops"`) || !strings.Contains(out, `"release_reason":"false positive"`) {
		t.Errorf("logs --json lacks the release's actor and reason:\n%s", out)
	}
	out, _ = run("quarantine", "show", id)
	if !strings.Contains(out, "released by ops at ") || !strings.Contains(out, "UTC: false positive") {
		t.Errorf("quarantine show lacks the release's reason:\n%s", out)
	}

	d := e.mail()
	if len(d) != 1 {
		t.Fatalf("next hop got %d messages, want the released one", len(d))
	}
	want := regexp.MustCompile(`^Received: from \[127\.0\.0\.1\]\r\n\tby \S+ \(outguard\) id ` + id + ` \(released from quarantine\)\r\n\tfor <rcpt@example\.org>;\r\n\t[A-Z][a-z]{2}, `)
	if !want.Match(d[0].Data) {
		t.Errorf("released copy starts %q, want outguard's Received field", d[0].Data[:min(len(d[0].Data), 200)])
	}
	body, err := testutil.StripReceived(d[0].Data)
	if err != nil || string(body) != msg {
		t.Errorf("below the Received field the copy differs from the message (%v)", err)
	}
}
