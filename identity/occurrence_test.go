package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The attack of docs/identity-recipes.md: a script on the hosting server
// writes the identity header itself, above or below the one its MTA adds.
func TestExtractOccurrence(t *testing.T) {
	long := strings.Repeat("a", 1000)
	tests := []struct {
		name      string
		occ       Occurrence
		header    []byte
		want      string
		ambiguous bool
	}{
		{"first: forged below", OccurrenceFirst, hdr("X-AuthUser: alice", "Subject: x", "X-AuthUser: innocent-neighbour"), "alice", false},
		{"first: forged above wins (wrong setting for a bottom-adding MTA)", OccurrenceFirst, hdr("X-AuthUser: innocent-neighbour", "Subject: x", "X-AuthUser: alice"), "innocent-neighbour", false},
		{"last: forged above", OccurrenceLast, hdr("X-AuthUser: innocent-neighbour", "Subject: x", "X-AuthUser: alice"), "alice", false},
		{"last: forged above, folded, other case", OccurrenceLast, hdr("x-authuser:", " innocent-neighbour", "X-AuthUser: alice"), "alice", false},
		{"last: a single header", OccurrenceLast, hdr("Subject: x", "X-AuthUser: alice"), "alice", false},
		{"last: invalid bottom does not fall back to the one above", OccurrenceLast, hdr("X-AuthUser: innocent-neighbour", "X-AuthUser: "+long), "env@example.com", false},
		{"only: a single header", OccurrenceOnly, hdr("Subject: x", "X-AuthUser: alice"), "alice", false},
		{"only: the same value twice", OccurrenceOnly, hdr("X-AuthUser: alice", "Subject: x", "X-AuthUser:  alice "), "alice", false},
		{"only: the same value folded differently", OccurrenceOnly, hdr("X-AuthUser: alice", "X-AuthUser:", " alice"), "alice", false},
		{"only: forged above", OccurrenceOnly, hdr("X-AuthUser: innocent-neighbour", "Subject: x", "X-AuthUser: alice"), "", true},
		{"only: forged below", OccurrenceOnly, hdr("X-AuthUser: alice", "Subject: x", "X-AuthUser: innocent-neighbour"), "", true},
		{"only: forged copy unreadable (over 998 octets)", OccurrenceOnly, hdr("X-AuthUser: "+long, "X-AuthUser: alice"), "", true},
		{"only: forged copy unreadable, below", OccurrenceOnly, hdr("X-AuthUser: alice", "X-AuthUser: "+long), "", true},
		{"only: a single unreadable copy is refused, not ambiguous", OccurrenceOnly, hdr("X-AuthUser: " + long), "env@example.com", false},
		{"only: forged empty copy", OccurrenceOnly, hdr("X-AuthUser:", "X-AuthUser: alice"), "", true},
		{"only: third copy differs", OccurrenceOnly, hdr("X-AuthUser: alice", "X-AuthUser: alice", "X-AuthUser: bob"), "", true},
		{"only: no header falls through", OccurrenceOnly, hdr("Subject: x"), "env@example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustRules(t, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: tc.occ}, RuleSpec{Kind: RuleEnvelopeSender})
			got := rs.Extract(Input{Header: tc.header, EnvelopeSender: "env@example.com"})
			if got.Identity != tc.want || got.Ambiguous != tc.ambiguous {
				t.Fatalf("got (%q, ambiguous %v), want (%q, %v); refused %v", got.Identity, got.Ambiguous, tc.want, tc.ambiguous, got.Refused)
			}
			if tc.ambiguous {
				// The envelope sender, which the script chooses too, is
				// not consulted: an ambiguous header ends extraction.
				if got.Rule != -1 || got.Source != "" {
					t.Errorf("ambiguous result names rule %d %q", got.Rule, got.Source)
				}
				if r := got.Reason(); !strings.Contains(r, "header X-AuthUser") || !strings.Contains(r, "different values") {
					t.Errorf("reason %q does not say which header had different values", r)
				}
			}
		})
	}
}

func TestExtractOccurrencePerRule(t *testing.T) {
	// Two rules on the same header with different occurrences each read
	// their own; the only-rule comes first and sees the conflict.
	header := hdr("X-AuthUser: innocent-neighbour", "X-AuthUser: alice")
	rs := mustRules(t, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceLast},
		RuleSpec{Kind: RuleHeader, Header: "x-authuser", Occurrence: OccurrenceOnly})
	if got := rs.Extract(Input{Header: header}); got.Identity != "alice" {
		t.Errorf("last rule first: got %q, want alice", got.Identity)
	}
	rs = mustRules(t, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceOnly},
		RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceLast})
	if got := rs.Extract(Input{Header: header}); got.Identity != "" || !got.Ambiguous {
		t.Errorf("only rule first: got %q ambiguous %v, want none", got.Identity, got.Ambiguous)
	}
}

func TestParseOccurrence(t *testing.T) {
	for s, want := range map[string]Occurrence{"": OccurrenceOnly, "only": OccurrenceOnly, "first": OccurrenceFirst, "last": OccurrenceLast} {
		got, err := ParseOccurrence(s)
		if err != nil || got != want {
			t.Errorf("ParseOccurrence(%q) = %v, %v; want %v", s, got, err, want)
		}
		if s != "" && got.String() != s {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), s)
		}
	}
	for _, s := range []string{"top", "First", "bottom", " last"} {
		if _, err := ParseOccurrence(s); !errors.Is(err, ErrBadRule) {
			t.Errorf("ParseOccurrence(%q): got %v, want ErrBadRule", s, err)
		}
	}
}

func TestResultReason(t *testing.T) {
	rs := mustRules(t, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser"}, RuleSpec{Kind: RuleAuthUser})
	if r := rs.Extract(Input{Header: hdr("X-AuthUser: alice")}).Reason(); r != "" {
		t.Errorf("identity found, reason %q", r)
	}
	if r := rs.Extract(Input{Header: hdr("Subject: x")}).Reason(); r != "" {
		t.Errorf("no value at all, reason %q", r)
	}
	got := rs.Extract(Input{Header: hdr("X-AuthUser: a,b"), AuthUser: "u\x01"}).Reason()
	want := "header X-AuthUser: several comma-separated values; auth_user: control character in value"
	if got != want {
		t.Errorf("got reason %q, want %q", got, want)
	}
}

// FuzzExtractOccurrence: whatever the header block, a copy of the rule's
// header written at the other end of the block than the MTA's (above it
// for last, anywhere for only) never becomes the identity.
func FuzzExtractOccurrence(f *testing.F) {
	f.Add([]byte("X-AuthUser: alice\r\nSubject: x\r\n\r\n"), "mallory")
	f.Add([]byte("Subject: x\r\nX-AuthUser:\r\n bob\r\n\r\n"), "bob ")
	f.Add([]byte("X-AuthUser: a, b\r\n\r\n"), "")
	f.Add([]byte("x-authuser : alice\n\n"), "\xff")
	last := mustRules(f, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceLast}, RuleSpec{Kind: RuleEnvelopeSender})
	only := mustRules(f, RuleSpec{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceOnly}, RuleSpec{Kind: RuleEnvelopeSender})
	f.Fuzz(func(t *testing.T, header []byte, forged string) {
		if bytes.ContainsAny([]byte(forged), "\r\n") {
			return // one header line
		}
		in := Input{Header: header, EnvelopeSender: "env@example.com"}
		gotLast, gotOnly := last.Extract(in), only.Extract(in)
		if gotOnly.Identity != "" && gotOnly.Identity != gotLast.Identity {
			t.Fatalf("only gave %q where last gave %q", gotOnly.Identity, gotLast.Identity)
		}
		if gotOnly.Ambiguous && (gotOnly.Identity != "" || gotOnly.Rule != -1) {
			t.Fatalf("ambiguous with identity %q rule %d", gotOnly.Identity, gotOnly.Rule)
		}
		// Prepend the script's copy above the whole block.
		forgedHeader := append([]byte("X-AuthUser: "+forged+"\r\n"), header...)
		in.Header = forgedHeader
		if gotLast.Rule == 0 {
			if again := last.Extract(in); again.Identity != gotLast.Identity {
				t.Fatalf("a copy written above changed last's identity from %q to %q", gotLast.Identity, again.Identity)
			}
		}
		if gotOnly.Rule == 0 {
			again := only.Extract(in)
			if again.Identity != "" && again.Identity != gotOnly.Identity {
				t.Fatalf("a copy written above changed only's identity from %q to %q", gotOnly.Identity, again.Identity)
			}
		}
	})
}
