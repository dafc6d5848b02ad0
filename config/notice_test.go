package config

import (
	"strings"
	"testing"
)

// TestCustomerNoticeChecked: a customer notice's templates and recipient
// are checked at load: an unknown placeholder, an unclosed {, a subject
// of two lines and a recipient that is no address are refused with the
// key; "" turns the notice off.
func TestCustomerNoticeChecked(t *testing.T) {
	parse := func(notice string) error {
		_, err := Parse([]byte(`
listeners: [{name: submission, address: "127.0.0.1:2525", allow_insecure_auth: true}]
next_hop: {type: capture}
domains:
  - name: out.example.net
    users: [{name: alice, networks: ["127.0.0.1/32"]}]
    customer_notice:
` + notice))
		return err
	}
	for _, tc := range []struct{ notice, want string }{
		{"      to: identity\n      subject: \"Paused {subject}\"\n      body: x\n", "customer_notice.subject: unknown placeholder {subject}"},
		{"      to: identity\n      subject: s\n      body: \"Hello {identity\"\n", "customer_notice.body: a { without its closing }"},
		{"      to: identity\n      subject: \"a\\nb\"\n      body: x\n", "customer_notice.subject: one line"},
		{"      to: nobody\n      subject: s\n      body: x\n", `customer_notice.to "nobody"`},
		{"      to: identity\n      body: x\n", "customer_notice.subject is required"},
	} {
		err := parse(tc.notice)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.notice, err, tc.want)
		}
	}
	for _, ok := range []string{
		"      to: identity\n      subject: \"{identity} paused\"\n      body: \"{domain} {user} {reason} {locked_at} {until} {lock_id} {{literal}\"\n",
		"      to: \"\"\n      subject: s\n      body: x\n",
		"      to: abuse-desk@out.example.net\n      subject: s\n      body: x\n",
	} {
		if err := parse(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
