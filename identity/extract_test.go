package identity

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustRules(t testing.TB, specs ...RuleSpec) *Rules {
	t.Helper()
	rs, err := NewRules(specs, RulesOptions{})
	if err != nil {
		t.Fatalf("NewRules: %v", err)
	}
	return rs
}

func hdr(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\nbody\r\n")
}

func TestExtractRuleKinds(t *testing.T) {
	header := hdr(
		"Received: from web1 by mx",
		"X-AuthUser: alice@customer.example",
		"X-PHP-Originating-Script: 1001:mailer.php",
		"From: <someone@example.com>",
	)
	in := Input{Header: header, AuthUser: "webhost1", EnvelopeSender: "bounce@customer.example"}
	tests := []struct {
		name       string
		specs      []RuleSpec
		in         Input
		want       string
		wantRule   int
		wantSource string
	}{
		{"header", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, in, "alice@customer.example", 0, "header X-AuthUser"},
		{"header name case-insensitive", []RuleSpec{{Kind: RuleHeader, Header: "x-authuser"}}, in, "alice@customer.example", 0, "header x-authuser"},
		{"header regex", []RuleSpec{{Kind: RuleHeader, Header: "X-PHP-Originating-Script", Regex: `^(\d+):`}}, in, "1001", 0, "header X-PHP-Originating-Script"},
		{"regex without match falls through", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser", Regex: `^uid=(\d+)$`}, {Kind: RuleAuthUser}}, in, "webhost1", 1, "auth_user"},
		{"auth_user", []RuleSpec{{Kind: RuleAuthUser}}, in, "webhost1", 0, "auth_user"},
		{"envelope_sender", []RuleSpec{{Kind: RuleEnvelopeSender}}, in, "bounce@customer.example", 0, "envelope_sender"},
		{"envelope_sender regex", []RuleSpec{{Kind: RuleEnvelopeSender, Regex: `^([^@]+)@`}}, in, "bounce", 0, "envelope_sender"},
		{"missing header falls through", []RuleSpec{{Kind: RuleHeader, Header: "X-Other"}, {Kind: RuleEnvelopeSender}}, in, "bounce@customer.example", 1, "envelope_sender"},
		{"first rule wins", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}, {Kind: RuleAuthUser}}, in, "alice@customer.example", 0, "header X-AuthUser"},
		{"empty auth falls through", []RuleSpec{{Kind: RuleAuthUser}, {Kind: RuleEnvelopeSender}}, Input{Header: header, EnvelopeSender: "x@y"}, "x@y", 1, "envelope_sender"},
		{"nothing", []RuleSpec{{Kind: RuleAuthUser}, {Kind: RuleEnvelopeSender}}, Input{Header: header}, "", -1, ""},
		{"no rules", nil, in, "", -1, ""},
		{"empty header value falls through", []RuleSpec{{Kind: RuleHeader, Header: "X-Empty"}, {Kind: RuleAuthUser}}, Input{Header: hdr("X-Empty:   "), AuthUser: "u"}, "u", 1, "auth_user"},
		{"bare LF line endings", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: []byte("A: b\nX-AuthUser: bob\n\n")}, "bob", 0, "header X-AuthUser"},
		{"obsolete space before colon", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: hdr("X-AuthUser : carol")}, "carol", 0, "header X-AuthUser"},
		{"header in body ignored", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: []byte("Subject: hi\r\n\r\nX-AuthUser: mallory\r\n")}, "", -1, ""},
		{"trimmed", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: hdr("X-AuthUser: \t dave \t")}, "dave", 0, "header X-AuthUser"},
		{"folded value unfolds keeping whitespace", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: hdr("X-AuthUser: John", "  Smith")}, "John  Smith", 0, "header X-AuthUser"},
		{"folded after colon", []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, Input{Header: hdr("X-AuthUser:", " erin@example.net")}, "erin@example.net", 0, "header X-AuthUser"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRules(t, tc.specs...).Extract(tc.in)
			if got.Identity != tc.want || got.Rule != tc.wantRule || got.Source != tc.wantSource {
				t.Errorf("got (%q, %d, %q), want (%q, %d, %q)", got.Identity, got.Rule, got.Source, tc.want, tc.wantRule, tc.wantSource)
			}
		})
	}
}

// TestExtractSpoofing reads the topmost occurrence (occurrence: first), as
// for an MTA that adds its header at the top.
func TestExtractSpoofing(t *testing.T) {
	rules := []RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceFirst}, {Kind: RuleEnvelopeSender}}
	long := strings.Repeat("a", 1000)
	tests := []struct {
		name        string
		header      []byte
		want        string
		wantRefused bool
	}{
		{"second header below the real one", hdr("X-AuthUser: alice", "Subject: x", "X-AuthUser: mallory"), "alice", false},
		{"second header differently cased", hdr("X-AuthUser: alice", "x-authuser: mallory"), "alice", false},
		{"second folded header below", hdr("X-AuthUser: alice", "X-AuthUser:", " mallory"), "alice", false},
		{"continuation line of the real header is not a new header", hdr("X-AuthUser: alice", "X-Mailer: x", " X-AuthUser: mallory"), "alice", false},
		{"comma-joined values", hdr("X-AuthUser: alice, mallory"), "env@example.com", true},
		{"comma-joined folded", hdr("X-AuthUser: alice,", " mallory"), "env@example.com", true},
		{"line over 998 octets", hdr("X-AuthUser: " + long), "env@example.com", true},
		{"folded continuation over 998 octets", hdr("X-AuthUser: alice", " "+long), "env@example.com", true},
		{"line of exactly 998 octets with long value refused by length", hdr("X-AuthUser: " + strings.Repeat("b", 998-len("X-AuthUser: "))), "env@example.com", true},
		{"control character", hdr("X-AuthUser: ali\x00ce"), "env@example.com", true},
		{"bare CR inside", hdr("X-AuthUser: alice\rX-AuthUser: mallory"), "env@example.com", true},
		{"tab folded inside", hdr("X-AuthUser: ali", "\tce"), "env@example.com", true},
		{"invalid UTF-8", hdr("X-AuthUser: \xff\xfe"), "env@example.com", true},
		{"oversized invalid topmost does not fall to the second", hdr("X-AuthUser: "+long, "X-AuthUser: mallory"), "env@example.com", true},
		{"comma topmost does not fall to the second", hdr("X-AuthUser: a,b", "X-AuthUser: mallory"), "env@example.com", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustRules(t, rules...).Extract(Input{Header: tc.header, EnvelopeSender: "env@example.com"})
			if got.Identity != tc.want {
				t.Errorf("got identity %q, want %q", got.Identity, tc.want)
			}
			if refused := len(got.Refused) > 0; refused != tc.wantRefused {
				t.Errorf("got refusals %v, want refused=%v", got.Refused, tc.wantRefused)
			}
		})
	}
}

func TestExtractMaxLength(t *testing.T) {
	rs, err := NewRules([]RuleSpec{{Kind: RuleHeader, Header: "X-AuthUser"}}, RulesOptions{MaxLength: 8})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, value, want string
	}{
		{"at the limit", "12345678", "12345678"},
		{"over the limit", "123456789", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := rs.Extract(Input{Header: hdr("X-AuthUser: " + tc.value)})
			if got.Identity != tc.want {
				t.Errorf("got %q, want %q", got.Identity, tc.want)
			}
		})
	}
	if got := mustRules(t, RuleSpec{Kind: RuleAuthUser}).Extract(Input{AuthUser: strings.Repeat("u", DefaultMaxLength+1)}); got.Identity != "" {
		t.Errorf("auth user over the default length: got %q, want none", got.Identity)
	}
}

func TestNewRulesErrors(t *testing.T) {
	tests := []struct {
		name string
		spec RuleSpec
	}{
		{"empty header name", RuleSpec{Kind: RuleHeader}},
		{"header name with colon", RuleSpec{Kind: RuleHeader, Header: "X-A:B"}},
		{"header name with space", RuleSpec{Kind: RuleHeader, Header: "X A"}},
		{"regex does not compile", RuleSpec{Kind: RuleHeader, Header: "X-A", Regex: "("}},
		{"regex without group", RuleSpec{Kind: RuleHeader, Header: "X-A", Regex: "abc"}},
		{"regex with two groups", RuleSpec{Kind: RuleHeader, Header: "X-A", Regex: "(a)(b)"}},
		{"auth_user with header", RuleSpec{Kind: RuleAuthUser, Header: "X-A"}},
		{"auth_user with occurrence", RuleSpec{Kind: RuleAuthUser, Occurrence: OccurrenceLast}},
		{"envelope_sender with occurrence", RuleSpec{Kind: RuleEnvelopeSender, Occurrence: OccurrenceFirst}},
		{"unknown occurrence", RuleSpec{Kind: RuleHeader, Header: "X-A", Occurrence: 7}},
		{"unknown kind", RuleSpec{Kind: 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRules([]RuleSpec{tc.spec}, RulesOptions{})
			if !errors.Is(err, ErrBadRule) {
				t.Errorf("got %v, want ErrBadRule", err)
			}
		})
	}
}

func TestHeaderNames(t *testing.T) {
	rs := mustRules(t, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser"}, RuleSpec{Kind: RuleAuthUser},
		RuleSpec{Kind: RuleHeader, Header: "x-authuser", Regex: "(.*)"}, RuleSpec{Kind: RuleHeader, Header: "X-Sender-Id"})
	got := rs.HeaderNames()
	want := []string{"X-AuthUser", "X-Sender-Id"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRemoveFields(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		names []string
		want  string
	}{
		{"every occurrence with continuations", "A: 1\r\nX-AuthUser: a\r\n b\r\nB: 2\r\nx-authuser: c\r\n\r\nX-AuthUser: body\r\n",
			[]string{"X-AuthUser"}, "A: 1\r\nB: 2\r\n\r\nX-AuthUser: body\r\n"},
		{"nothing to remove", "A: 1\n\nbody", []string{"X-AuthUser"}, "A: 1\n\nbody"},
		{"several names", "A: 1\nB: 2\nC: 3\n", []string{"a", "C"}, "B: 2\n"},
		{"no final newline", "A: 1\r\nX: 2", []string{"X"}, "A: 1\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got := RemoveFields(in, tc.names...)
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if string(in) != tc.in {
				t.Errorf("input modified: %q", in)
			}
		})
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte("X-AuthUser: alice\r\nSubject: x\r\n\r\n"), "auth", "env@example.com")
	f.Add([]byte("X-AuthUser:\r\n bob\r\nX-AuthUser: mallory\r\n"), "", "")
	f.Add([]byte("X-AuthUser: a, b\r\n"), "", "x@y")
	f.Add([]byte("x-authuser : uid=42; host=web1\n\n"), "u", "")
	f.Add([]byte("X-AuthUser: "+strings.Repeat("z", 1200)+"\r\n"), "", "")
	f.Add([]byte("\r\nX-AuthUser: body\r\n"), "", "")
	rs := mustRules(f,
		RuleSpec{Kind: RuleHeader, Header: "X-Sender", Regex: `uid=(\d+)`, Occurrence: OccurrenceFirst},
		RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceFirst},
		RuleSpec{Kind: RuleAuthUser},
		RuleSpec{Kind: RuleEnvelopeSender},
	)
	f.Fuzz(func(t *testing.T, header []byte, auth, env string) {
		in := Input{Header: header, AuthUser: auth, EnvelopeSender: env}
		got := rs.Extract(in)
		if got.Identity == "" {
			if got.Rule != -1 {
				t.Fatalf("no identity but rule %d", got.Rule)
			}
		} else {
			if len(got.Identity) > DefaultMaxLength {
				t.Fatalf("identity of %d bytes", len(got.Identity))
			}
			if strings.TrimSpace(got.Identity) != got.Identity {
				t.Fatalf("identity %q not trimmed", got.Identity)
			}
			for _, c := range []byte(got.Identity) {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("control character in %q", got.Identity)
				}
			}
			if got.Rule < 2 && strings.Contains(got.Identity, ",") {
				t.Fatalf("header identity %q has a comma", got.Identity)
			}
		}
		// A header added at the bottom of the header block must not
		// change the identity when the header block has an end.
		if end := bytes.Index(header, []byte("\n\r\n")); end >= 0 && !bytes.Contains(header[:end], []byte("\n\n")) {
			extra := "X-AuthUser: mallory\r\n"
			if got.Rule == 0 {
				extra += "X-Sender: uid=666\r\n"
			}
			spoofed := append(append(append([]byte(nil), header[:end+1]...), extra...), header[end+1:]...)
			again := rs.Extract(Input{Header: spoofed, AuthUser: auth, EnvelopeSender: env})
			if got.Identity != "" && got.Rule < 2 && again.Identity != got.Identity {
				t.Fatalf("appended header changed identity from %q to %q", got.Identity, again.Identity)
			}
		}
		// Removing the rule headers leaves none of them behind.
		stripped := RemoveFields(header, rs.HeaderNames()...)
		if r := rs.Extract(Input{Header: stripped}); r.Identity != "" {
			t.Fatalf("identity %q found after removing the rule headers from %q", r.Identity, stripped)
		}
	})
}
