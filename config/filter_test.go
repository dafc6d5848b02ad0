package config

import (
	"os"
	"path/filepath"
	"testing"
)

// filterBase is a minimal valid configuration without a filter section.
const filterBase = `
listeners:
  - name: submission
    address: "127.0.0.1:2525"
    tls: none
    allow_insecure_auth: true
next_hop:
  type: capture
domains:
  - name: example.com
    users:
      - name: alice
        networks: ["127.0.0.1/32"]
`

func parseWithFilter(t *testing.T, section string) (*Config, error) {
	t.Helper()
	return Parse([]byte(filterBase + section))
}

func TestFilterDefaults(t *testing.T) {
	c, err := parseWithFilter(t, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f := c.Filter
	b := f.Engines.Builtin
	if b.Enabled == nil || !*b.Enabled {
		t.Errorf("got builtin.enabled %v, want true", b.Enabled)
	}
	if f.Engines.Rspamd.Enabled || f.Engines.Clamd.Enabled {
		t.Errorf("got rspamd %v clamd %v, want both disabled", f.Engines.Rspamd.Enabled, f.Engines.Clamd.Enabled)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"builtin.spam_threshold", b.SpamThreshold, DefaultSpamThreshold},
		{"builtin.on_error", b.OnError, "tempfail"},
		{"builtin.dangerous_attachment_class", b.DangerousAttachmentClass, "virus"},
		{"builtin.mass_recipients", b.MassRecipients, DefaultMassRecipients},
		{"rspamd.url", f.Engines.Rspamd.URL, DefaultRspamdURL},
		{"rspamd.timeout", f.Engines.Rspamd.Timeout.D(), DefaultRspamdTimeout},
		{"clamd.address", f.Engines.Clamd.Address, DefaultClamdAddress},
		{"clamd.over_limit", f.Engines.Clamd.OverLimit, "skip"},
		{"clamd.max_stream_bytes", f.Engines.Clamd.MaxStreamBytes, int64(DefaultClamdMaxStreamBytes)},
		{"limits.max_parts", f.Limits.MaxParts, DefaultFilterMaxParts},
		{"limits.max_decoded_bytes", f.Limits.MaxDecodedBytes, int64(DefaultFilterMaxDecodedBytes)},
		{"limits.max_part_bytes", f.Limits.MaxPartBytes, c.Limits.MaxMessageBytes},
		{"limits.max_archive_depth", f.Limits.MaxArchiveDepth, DefaultFilterMaxArchiveDepth},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestFilterLimitsFollowMessageSize: no part of a message the listeners
// accept is cut by the default part limits.
func TestFilterLimitsFollowMessageSize(t *testing.T) {
	c, err := Parse([]byte(filterBase + "limits: {max_message_bytes: 104857600}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Filter.Limits; l.MaxPartBytes != 100<<20 || l.MaxDecodedBytes != 200<<20 {
		t.Errorf("got max_part_bytes %d, max_decoded_bytes %d; want 100 MiB and 200 MiB", l.MaxPartBytes, l.MaxDecodedBytes)
	}
}

func TestFilterExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "example-filter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseWithFilter(t, string(b))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if got := len(c.Filter.Engines.Builtin.Rules); got == 0 {
		t.Errorf("got %d example rules, want some", got)
	}
	if r := c.Filter.Engines.Builtin.Rules[0]; r.Match != "substring" && r.Match != "regex" {
		t.Errorf("got rule match %q after defaults", r.Match)
	}
}

func TestFilterBadFixtures(t *testing.T) {
	tests := []struct {
		file string
		want string // part of the message naming the key
	}{
		{"on-error", "rspamd.on_error"},
		{"rule-target", "target \"subject\""},
		{"rule-regex", "regular expression"},
		{"rule-name", "name is empty"},
		{"rule-duplicate", "duplicate rule name"},
		{"attachment-class", "dangerous_attachment_class"},
		{"clamd-address", "clamd.address"},
		{"rspamd-url", "rspamd.url"},
		{"over-limit", "over_limit"},
		{"scores", "LINK_MISMATCHES"},
		{"protected-domain", "protected_domains"},
		{"limits", "max_part_bytes"},
		{"unknown-key", "spam_treshold"},
		{"spam-action", "spam_actions"},
		{"mass-recipients", "mass_recipients"},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{"bad-filter-" + tt.file + ".yaml", []string{tt.want}})
	}
	checkBadFixtures(t, "bad-filter-", filterBase, cases)
}
