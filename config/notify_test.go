package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNotifyDefaults(t *testing.T) {
	c, err := Parse([]byte(sectionBase))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	w := c.Notify.Webhook
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"enabled", w.Enabled(), false},
		{"timeout", w.Timeout.D(), 10 * time.Second},
		{"retry.initial", w.Retry.Initial.D(), 10 * time.Second},
		{"retry.max", w.Retry.Max.D(), 10 * time.Minute},
		{"max_age", w.MaxAge.D(), 24 * time.Hour},
		{"events", strings.Join(w.Events, ","), "lock,auto-lock,unlock,expire,would-lock,outbox-expired"},
		{"mail_on_auto_lock", c.Notify.MailOnAutoLock, false},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestNotifyExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "example-notify.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(sectionBase + "arf:\n  abuse_address: abuse@out.example.net\n" + string(b)))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if !c.Notify.Webhook.Enabled() || !slices.Contains(c.Notify.Webhook.Events, "auto-lock") {
		t.Errorf("example: got %+v", c.Notify)
	}
}

func TestNotifyValid(t *testing.T) {
	for name, section := range map[string]string{
		"off":              "notify: {}\n",
		"webhook":          "notify:\n  webhook:\n    url: https://hooks.example.net/og\n    secret: 0123456789abcdef0123\n",
		"plain http":       "notify:\n  webhook:\n    url: http://127.0.0.1:9000/\n    secret: 0123456789abcdef0123\n    events: [auto-lock]\n",
		"mail with domain": "notify:\n  mail_on_auto_lock: true\n",
		// Clearing only the URL turns the webhook off.
		"url cleared": "notify:\n  webhook:\n    url: \"\"\n    secret: 0123456789abcdef0123\n    events: [lock]\n",
	} {
		t.Run(name, func(t *testing.T) {
			base := sectionBase
			if name == "mail with domain" {
				base = strings.Replace(base, "  - name: out.example.net\n", "  - name: out.example.net\n    abuse_address: abuse@out.example.net\n", 1)
			}
			if _, err := Parse([]byte(base + section)); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

func TestNotifyBad(t *testing.T) {
	tests := []struct {
		file string
		want string // a substring of the error: the key and the hint
	}{
		{"bad-notify-url-scheme.yaml", "notify.webhook.url"},
		{"bad-notify-url-credentials.yaml", "must not carry credentials"},
		{"bad-notify-secret-short.yaml", "notify.webhook.secret must be at least 16"},
		{"bad-notify-timeout.yaml", "notify.webhook.timeout"},
		{"bad-notify-retry-initial.yaml", "notify.webhook.retry.initial"},
		{"bad-notify-retry-max.yaml", "notify.webhook.retry.max"},
		{"bad-notify-max-age.yaml", "notify.webhook.max_age"},
		{"bad-notify-event-unknown.yaml", `unknown event "banned"`},
		{"bad-notify-event-duplicate.yaml", `lists "lock" twice`},
		{"bad-notify-events-empty.yaml", "notify.webhook.events is empty"},
		{"bad-notify-mail-without-abuse.yaml", "notify.mail_on_auto_lock"},
		{"bad-notify-unknown-key.yaml", `unknown key "headers"`},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{tt.file, []string{tt.want}})
	}
	checkBadFixtures(t, "bad-notify-", sectionBase, cases)
}
