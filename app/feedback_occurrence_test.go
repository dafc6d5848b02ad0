package app

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestComplaintIdentityFollowsOccurrence quotes, in complaints that only
// the identity header can attribute, an original carrying X-AuthUser twice:
// a script's forged value above the sending MTA's own. The domain's rule
// reads that header with occurrence: last, so the pipeline took the
// bottom value; the complaint names the same one, never the forged value
// the pipeline ignored. With the default occurrence (only) it names none.
func TestComplaintIdentityFollowsOccurrence(t *testing.T) {
	tests := []struct {
		occurrence string
		want       string
	}{
		{"last", "spammer"},
		{"first", "innocent1"},
		{"only", ""},
	}
	for _, tt := range tests {
		t.Run(tt.occurrence, func(t *testing.T) {
			e := feedbackEnv(t, "  reporters: [{name: fbl, networks: [127.0.0.0/8], count_identity_header: true}]\n")
			b, err := os.ReadFile(e.path)
			if err != nil {
				t.Fatal(err)
			}
			y := strings.Replace(string(b), "identity_rules: [{header: X-AuthUser}", "identity_rules: [{header: X-AuthUser, occurrence: "+tt.occurrence+"}", 1)
			if y == string(b) {
				t.Fatal("the test config has no X-AuthUser rule to change")
			}
			if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			e.restart()
			orig := fmt.Sprintf("X-AuthUser: innocent1\r\nFrom: shop@out.example.net\r\nTo: victim@mailbox.example\r\nSubject: two values\r\n"+
				"X-AuthUser: spammer\r\nMessage-ID: <two.%s@elsewhere.example>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nbuy now\r\n", tt.occurrence)
			if err := e.sendReport("fbl@mailbox.example", fblReport("fbl@mailbox.example", 1, orig)); err != nil {
				t.Fatalf("report: %v, want 250 (stored)", err)
			}
			list := e.feedbackList(t, "")
			if len(list) != 1 {
				t.Fatalf("stored reports: got %d, want 1", len(list))
			}
			r := list[0]
			if r.Identity != tt.want {
				t.Errorf("identity: got %q (attribution %s), want %q", r.Identity, r.Attribution, tt.want)
			}
			if tt.want == "" && r.Attribution != "none" {
				t.Errorf("attribution: got %s, want none", r.Attribution)
			}
			if e.locked("innocent1") && tt.want != "innocent1" {
				t.Errorf("innocent1 locked by a complaint naming a value the pipeline ignored")
			}
		})
	}
}
