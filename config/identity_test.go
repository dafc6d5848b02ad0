package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// identityBase is a minimal valid configuration without an identity
// section.
const identityBase = `
listeners:
  - name: submission
    address: "127.0.0.1:2525"
    tls: none
    allow_insecure_auth: true
next_hop:
  type: capture
`

const identityDomains = `
domains:
  - name: out.example.net
    identity_rules:
      - header: X-AuthUser
      - header: X-PHP-Originating-Script
        regex: '^(\d+):'
      - envelope_sender: true
    thresholds:
      spam: 10
      messages: 500
      messages_window: 1h
    users:
      - name: web1
        networks: ["192.0.2.0/24"]
        identity_rules:
          - auth_user: true
        thresholds:
          window: 30m
`

func TestIdentityDefaults(t *testing.T) {
	c, err := Parse([]byte(identityBase + identityDomains))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	id := c.Identity
	th := id.Thresholds
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"max_length", id.MaxLength, DefaultIdentityMaxLength},
		{"thresholds.window", th.Window.D(), DefaultIdentityWindow},
		{"thresholds.spam", *th.Spam, DefaultIdentitySpam},
		{"thresholds.phishing", *th.Phishing, DefaultIdentityPhishing},
		{"thresholds.virus", *th.Virus, DefaultIdentityVirus},
		{"thresholds.complaints", *th.Complaints, DefaultIdentityComplaints},
		{"thresholds.messages", *th.Messages, 0},
		{"thresholds.recipients", *th.Recipients, 0},
		{"thresholds.spam_window", th.SpamWindow == nil, true},
		{"lock_duration", id.LockDuration.D(), DefaultIdentityLockDuration},
		{"escalate_after", *id.EscalateAfter, DefaultIdentityEscalateAfter},
		{"monitor", id.Monitor, false},
		{"flush_interval", id.FlushInterval.D(), DefaultIdentityFlushInterval},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	d := c.Domains[0]
	if len(d.IdentityRules) != 3 || d.IdentityRules[1].Regex != `^(\d+):` || !d.IdentityRules[2].EnvelopeSender {
		t.Errorf("domain rules: got %+v", d.IdentityRules)
	}
	dt := d.Thresholds
	if dt == nil || *dt.Spam != 10 || *dt.Messages != 500 || dt.MessagesWindow.D() != time.Hour || dt.Window != nil || dt.Virus != nil {
		t.Errorf("domain thresholds: got %+v, want spam 10, messages 500/1h, the rest inherited (nil)", dt)
	}
	ut := d.Users[0].Thresholds
	if ut == nil || ut.Window.D() != 30*time.Minute || ut.Spam != nil {
		t.Errorf("user thresholds: got %+v, want window 30m only", ut)
	}
}

func TestIdentityZeroValues(t *testing.T) {
	c, err := Parse([]byte(identityBase + identityDomains + `
identity:
  lock_duration: 0
  escalate_after: 0
  thresholds:
    virus: 0
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Identity.LockDuration.D() != 0 || *c.Identity.EscalateAfter != 0 || *c.Identity.Thresholds.Virus != 0 {
		t.Errorf("explicit zeros replaced by defaults: lock_duration %v escalate_after %v virus %v",
			c.Identity.LockDuration, *c.Identity.EscalateAfter, *c.Identity.Thresholds.Virus)
	}
}

func TestIdentityExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "example-identity.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(identityBase + identityDomains + string(b)))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if *c.Identity.Thresholds.Spam != 5 || c.Identity.Thresholds.Window.D() != 10*time.Minute {
		t.Errorf("example thresholds: got %+v", c.Identity.Thresholds)
	}
}

func TestIdentityBadFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []string // every one must appear in the error
	}{
		{"bad-identity-rule-two-kinds.yaml", []string{"identity_rules[0]", "exactly one of"}},
		{"bad-identity-rule-no-kind.yaml", []string{"users[0] (web1).identity_rules[0]", "exactly one of"}},
		{"bad-identity-rule-regex.yaml", []string{"identity_rules[0]", "does not compile"}},
		{"bad-identity-rule-regex-groups.yaml", []string{"identity_rules[0]", "2 capture groups"}},
		{"bad-identity-rule-header-name.yaml", []string{"identity_rules[0]", "not a header field name"}},
		{"bad-identity-rule-occurrence.yaml", []string{"identity_rules[0]", `occurrence "bottom"`, "first", "last", "only"}},
		{"bad-identity-rule-occurrence-kind.yaml", []string{"identity_rules[0]", "occurrence applies to header rules only"}},
		{"bad-identity-user-thresholds.yaml", []string{"users[0] (web1).thresholds", "window must be a positive duration", "spam -2 is negative"}},
		{"bad-identity-trace-without-key.yaml", []string{"identity.trace_header", "trace_key"}},
		{"bad-identity-trace-key-short.yaml", []string{"identity.trace_key", "at least 16"}},
		{"bad-identity-trace-key-both.yaml", []string{"trace_key and trace_key_file"}},
		{"bad-identity-trace-header-name.yaml", []string{"identity.trace_header", "not a header field name"}},
		{"bad-identity-max-length.yaml", []string{"identity.max_length 100000"}},
		{"bad-identity-threshold-negative.yaml", []string{"identity.thresholds", "phishing -1 is negative"}},
		{"bad-identity-threshold-too-high.yaml", []string{"identity.thresholds", "spam 5000 is above the maximum"}},
		{"bad-identity-threshold-window-long.yaml", []string{"identity.thresholds", "messages_window", "7d"}},
		{"bad-identity-escalate-negative.yaml", []string{"identity.escalate_after -1"}},
		{"bad-identity-flush-interval.yaml", []string{"identity.flush_interval"}},
		{"bad-identity-unknown-key.yaml", []string{"unknown key \"spam_count\""}},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{tt.file, tt.want})
	}
	checkBadFixtures(t, "bad-identity-", "", cases)
}

func TestIdentityRuleCheck(t *testing.T) {
	tests := []struct {
		name string
		rule IdentityRule
		ok   bool
	}{
		{"header", IdentityRule{Header: "X-AuthUser"}, true},
		{"header with regex", IdentityRule{Header: "X-AuthUser", Regex: `^([^@]+)`}, true},
		{"auth_user", IdentityRule{AuthUser: true}, true},
		{"envelope_sender with regex", IdentityRule{EnvelopeSender: true, Regex: `^(.+)@`}, true},
		{"non-capturing group is fine", IdentityRule{Header: "X-A", Regex: `(?:uid|id)=(\d+)`}, true},
		{"none", IdentityRule{}, false},
		{"two", IdentityRule{AuthUser: true, EnvelopeSender: true}, false},
		{"no group", IdentityRule{Header: "X-A", Regex: `\d+`}, false},
		{"occurrence first", IdentityRule{Header: "X-A", Occurrence: "first"}, true},
		{"occurrence last", IdentityRule{Header: "X-A", Occurrence: "last"}, true},
		{"occurrence only", IdentityRule{Header: "X-A", Occurrence: "only"}, true},
		{"occurrence unknown", IdentityRule{Header: "X-A", Occurrence: "top"}, false},
		{"occurrence upper case", IdentityRule{Header: "X-A", Occurrence: "Last"}, false},
		{"occurrence on auth_user", IdentityRule{AuthUser: true, Occurrence: "last"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if msg := tc.rule.check(); (msg == "") != tc.ok {
				t.Errorf("got %q, want ok=%v", msg, tc.ok)
			}
		})
	}
}

func TestTraceKeyBytes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(good, []byte("  0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      Identity
		want    string
		wantErr bool
	}{
		{"none", Identity{}, "", false},
		{"inline", Identity{TraceKey: "inline-key-0123456789"}, "inline-key-0123456789", false},
		{"file trimmed", Identity{TraceKeyFile: good}, "0123456789abcdef0123456789abcdef", false},
		{"file too short", Identity{TraceKeyFile: short}, "", true},
		{"missing file", Identity{TraceKeyFile: filepath.Join(dir, "nope")}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.id.TraceKeyBytes()
			if (err != nil) != tc.wantErr || string(got) != tc.want {
				t.Errorf("got (%q, %v), want (%q, error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestIdentityResolvePaths(t *testing.T) {
	id := Identity{TraceKeyFile: "trace.key"}
	id.resolvePaths(func(p *string) { *p = filepath.Join("/etc/outguard", *p) })
	if got, want := id.TraceKeyFile, filepath.Join("/etc/outguard", "trace.key"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
