package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestARFDefaults(t *testing.T) {
	c, err := Parse([]byte(sectionBase))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := c.ARF
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"enabled", a.IsEnabled(), true},
		{"from", a.From, "outguard@mta.out.example.net"},
		{"max_original_bytes", a.MaxOriginalBytes, DefaultARFMaxOriginalBytes},
		{"parse_max_bytes", a.ParseMaxBytes, int64(DefaultARFParseMaxBytes)},
		{"retry.initial", a.Retry.Initial.D(), 30 * time.Second},
		{"retry.max", a.Retry.Max.D(), 30 * time.Minute},
		{"max_age", a.MaxAge.D(), 5 * 24 * time.Hour},
		{"identity_header", a.IdentityHeader, "X-AuthUser"},
		{"relay.address", a.Relay.Address, ""},
		{"relay.timeout", a.Relay.Timeout.D(), DefaultARFRelayTimeout},
		{"feedback_retention", a.FeedbackRetention.D(), 90 * 24 * time.Hour},
		{"reporters", len(a.FeedbackReporters()), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestARFExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "example-arf.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(sectionBase + string(b)))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if c.ARF.AbuseAddress == "" || !c.ARF.IsEnabled() {
		t.Errorf("example: got abuse_address %q enabled %v", c.ARF.AbuseAddress, c.ARF.IsEnabled())
	}
}

func TestARFValid(t *testing.T) {
	for name, section := range map[string]string{
		"disabled":       "arf:\n  enabled: false\n",
		"explicit relay": "arf:\n  relay:\n    address: \"relay.example.net:587\"\n    tls: starttls\n    username: u\n    password: p\n",
		"long backoff":   "arf:\n  retry: {initial: 1m, max: 2h}\n  max_age: 2w\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(sectionBase + section)); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

func TestARFBad(t *testing.T) {
	tests := []struct {
		file string
		want string // a substring of the error: the key and the hint
	}{
		{"bad-arf-abuse-address.yaml", "arf.abuse_address"},
		{"bad-arf-from.yaml", "arf.from"},
		{"bad-arf-feedback-address.yaml", "arf.feedback_address"},
		{"bad-arf-feedback-same-as-abuse.yaml", "use two mailboxes"},
		{"bad-arf-max-original-bytes.yaml", "arf.max_original_bytes"},
		{"bad-arf-parse-max-bytes.yaml", "arf.parse_max_bytes"},
		{"bad-arf-identity-header.yaml", "arf.identity_header"},
		{"bad-arf-retry-initial.yaml", "arf.retry.initial"},
		{"bad-arf-retry-max.yaml", "arf.retry.max"},
		{"bad-arf-max-age.yaml", "arf.max_age"},
		{"bad-arf-relay-address.yaml", "arf.relay.address"},
		{"bad-arf-relay-tls.yaml", "arf.relay.tls"},
		{"bad-arf-relay-credentials.yaml", "username and password"},
		{"bad-arf-relay-without-address.yaml", "need arf.relay.address"},
		{"bad-arf-relay-timeout.yaml", "arf.relay.timeout"},
		{"bad-arf-unknown-key.yaml", "abuse_adress"},
		{"bad-arf-reporter-no-name.yaml", "give it a name"},
		{"bad-arf-reporter-no-match.yaml", "set domains"},
		{"bad-arf-reporter-network.yaml", "192.0.2.0/33"},
		{"bad-arf-reporter-domain.yaml", "without user@"},
		{"bad-arf-reporter-duplicate.yaml", "used twice"},
		{"bad-arf-reporter-reserved-name.yaml", "choose another"},
		{"bad-arf-feedback-sources.yaml", "arf.feedback_sources"},
		{"bad-arf-feedback-retention.yaml", "arf.feedback_retention"},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{tt.file, []string{tt.want}})
	}
	checkBadFixtures(t, "bad-arf-", sectionBase, cases)
}

// TestARFReporters checks the reporter list and that the older
// feedback_sources key becomes one more reporter.
func TestARFReporters(t *testing.T) {
	c, err := Parse([]byte(sectionBase + `arf:
  reporters:
    - name: mailbox
      domains: [FBL.Mailbox.Example.]
      networks: [192.0.2.0/24, "2001:db8::1"]
      count_identity_header: true
    - name: portal
      domains: [complaints.portal.example]
  feedback_sources: [203.0.113.9]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got := c.ARF.FeedbackReporters()
	if len(got) != 3 {
		t.Fatalf("got %d reporters, want 3: %+v", len(got), got)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmtAny(got) != fmtAny(want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	check("first name", got[0].Name, "mailbox")
	check("first domains", got[0].Domains, []string{"fbl.mailbox.example"})
	check("first networks", got[0].Networks, "[192.0.2.0/24 2001:db8::1/128]")
	check("first counts identity header", got[0].CountIdentityHeader, true)
	check("second counts identity header", got[1].CountIdentityHeader, false)
	check("legacy name", got[2].Name, LegacyFeedbackSourcesReporter)
	check("legacy networks", got[2].Networks, "[203.0.113.9/32]")
	check("legacy domains", len(got[2].Domains), 0)
}

func fmtAny(v any) string { return fmt.Sprint(v) }
