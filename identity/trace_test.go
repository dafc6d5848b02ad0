package identity

import (
	"fmt"
	"strings"
	"testing"
)

func TestTraceToken(t *testing.T) {
	key := []byte("0123456789abcdef-trace-key")
	tok := TraceToken(key, "01JTX0000000000000000000A")
	tests := []struct {
		name  string
		key   []byte
		txID  string
		token string
		want  bool
	}{
		{"same key and tx", key, "01JTX0000000000000000000A", tok, true},
		{"upper case and spaces from a complaint", key, "01JTX0000000000000000000A", "  " + strings.ToUpper(tok) + "\r\n", true},
		{"other tx", key, "01JTX0000000000000000000B", tok, false},
		{"other key", []byte("another-key-of-16+"), "01JTX0000000000000000000A", tok, false},
		{"truncated token", key, "01JTX0000000000000000000A", tok[:20], false},
		{"garbage", key, "01JTX0000000000000000000A", "not a token at all!!!!!!", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyTraceToken(tc.key, tc.txID, tc.token); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if len(tok) != 24 || strings.ToLower(tok) != tok {
		t.Errorf("got token %q, want 24 lower-case characters", tok)
	}
	if strings.Contains(tok, "01JTX") {
		t.Errorf("token %q reveals the transaction id", tok)
	}
}

func TestParseTraceToken(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"valid", "abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwx", true},
		{"normalised", " ABCDEFGHIJKLMNOPQRSTUVWX\t", "abcdefghijklmnopqrstuvwx", true},
		{"too short", "abc", "", false},
		{"bad alphabet", "abcdefghijklmnopqrstuvw1", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseTraceToken(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got (%q, %v), want (%q, %v)", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func ExampleTraceToken() {
	key := []byte("a secret of at least 16 bytes")
	tok := TraceToken(key, "01J0000000000000000000000")
	fmt.Println(len(tok), VerifyTraceToken(key, "01J0000000000000000000000", tok))
	// Output: 24 true
}

func ExampleRules_Extract() {
	rules, err := NewRules([]RuleSpec{
		// The sending MTA appends X-AuthUser at the bottom of the header.
		{Kind: RuleHeader, Header: "X-AuthUser", Occurrence: OccurrenceLast},
		{Kind: RuleEnvelopeSender},
	}, RulesOptions{})
	if err != nil {
		panic(err)
	}
	header := []byte("X-AuthUser: forged@elsewhere.example\r\n" +
		"Subject: hello\r\n" +
		"X-AuthUser: alice@customer.example\r\n\r\n")
	res := rules.Extract(Input{Header: header, EnvelopeSender: "www-data@web1.example"})
	fmt.Println(res.Identity, "from", res.Source)
	// Output: alice@customer.example from header X-AuthUser
}

func FuzzParseTraceToken(f *testing.F) {
	f.Add(TraceToken([]byte("0123456789abcdef"), "tx"))
	f.Add(" ABCDEFGHIJKLMNOPQRSTUVWX\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, ok := ParseTraceToken(s)
		if !ok {
			if tok != "" {
				t.Fatalf("not ok but got %q", tok)
			}
			return
		}
		if len(tok) != 24 || strings.ToLower(tok) != tok {
			t.Fatalf("got %q, want 24 lower-case characters", tok)
		}
		if again, ok := ParseTraceToken(tok); !ok || again != tok {
			t.Fatalf("normalised token %q does not parse to itself: %q %v", tok, again, ok)
		}
	})
}
