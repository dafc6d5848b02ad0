package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// fakeNotices renders the customer notice of cliDomOut (to the identity,
// when it is an email address) and counts the ones queued.
type fakeNotices struct {
	mu     sync.Mutex
	queued []string
}

func (f *fakeNotices) RenderNotice(l identity.Lock) (ops.Notice, bool, error) {
	if l.Domain != cliDomOut {
		return ops.Notice{}, false, nil
	}
	to := ""
	if strings.Contains(l.Name, "@") {
		to = l.Name
	}
	return ops.Notice{To: to, Subject: "Mail of " + l.Name + " is paused", Body: "Reason: " + l.Reason + "\nBye\n"}, true, nil
}

func (f *fakeNotices) QueueNotice(_ context.Context, l identity.Lock) (ops.Notice, error) {
	n, _, err := f.RenderNotice(l)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, n.To)
	return n, err
}

func (f *fakeNotices) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queued)
}

// TestCLINotify: outguard notify shows the notice, sends it with a reason
// (not with --dry-run), and says why when it cannot.
func TestCLINotify(t *testing.T) {
	e := newCLIEnv(t)
	const ident = "alice@customer.example"
	if code, out, errs := e.cli(cliTokAll, "lock", "identity", ident, "--domain", cliDomOut, "--reason", "spam run"); code != 0 {
		t.Fatalf("lock: exit %d %s %s", code, out, errs)
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		want  string
		sends int
	}{
		{"no reason", []string{"notify", ident, "--domain", cliDomOut}, exitUsage, "--reason TEXT is required", 0},
		{"no domain", []string{"notify", ident, "--reason", "x"}, exitUsage, "--domain D is required", 0},
		{"dry run", []string{"notify", ident, "--domain", cliDomOut, "--dry-run"}, exitOK, "subject  Mail of " + ident + " is paused\n\n  Reason: spam run\n  Bye\n\nnot sent (--dry-run)", 0},
		{"send", []string{"notify", ident, "--domain", cliDomOut, "--reason", "ticket 4712"}, exitOK, "to       " + ident + "\n", 1},
		{"not locked", []string{"notify", "bob@customer.example", "--domain", cliDomOut, "--reason", "x"}, exitFailed, "is not locked", 1},
		{"no notice for the domain", []string{"notify", "mallory@other.example", "--domain", cliDomOth, "--reason", "x"}, exitFailed, "no customer notice is configured", 1},
		{"another domain's token", []string{"notify", "mallory@other.example", "--domain", cliDomOth, "--reason", "x", "--token", cliTokOut}, exitFailed, "another administrative domain", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := cliTokAll
			if c.name == "another domain's token" {
				tok = ""
			}
			code, out, errs := e.cli(tok, c.args...)
			if code != c.code || !strings.Contains(out+errs, c.want) {
				t.Errorf("exit %d, output %q %q; want exit %d with %q", code, out, errs, c.code, c.want)
			}
			if got := e.notices.count(); got != c.sends {
				t.Errorf("notices queued: %d, want %d", got, c.sends)
			}
		})
	}
	code, out, _ := e.cli(cliTokAll, "notify", ident, "--domain", cliDomOut, "--reason", "again", "--json")
	var n apiv1.Notice
	if err := json.Unmarshal([]byte(out), &n); code != 0 || err != nil || !n.Queued || n.To != ident || n.Digest == "" {
		t.Errorf("--json: exit %d %q (%v)", code, out, err)
	}
	code, out, _ = e.cli(cliTokAll, "audit", "--action", "notify")
	if code != 0 || strings.Count(out, "notify") != 2 || !strings.Contains(out, "ticket 4712") {
		t.Errorf("audit --action notify: exit %d\n%s", code, out)
	}
}
