package arf

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseIdentityOccurrence parses a complaint whose original carries
// the identity header twice, as a script that writes its own X-AuthUser
// above the sending MTA's would leave it: the identity named is the
// occurrence the identity rule reads, never the other one.
func TestParseIdentityOccurrence(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "arf-identity-ambiguous.eml"))
	if err != nil {
		t.Fatal(err)
	}
	// alice above bob in the original.
	redactTop := bytes.Replace(raw, []byte("X-AuthUser: alice@customer.example"), []byte("X-AuthUser: [redacted]"), 1)
	redactBottom := bytes.Replace(raw, []byte("X-AuthUser: bob@customer.example"), []byte("X-AuthUser: xxxxx@customer.example"), 1)
	tests := []struct {
		name          string
		raw           []byte
		occ           Occurrence
		want          string
		wantAmbiguous bool
	}{
		{"only (zero value)", raw, "", "", true},
		{"only", raw, OccurrenceOnly, "", true},
		{"first", raw, OccurrenceFirst, "alice@customer.example", false},
		{"last", raw, OccurrenceLast, "bob@customer.example", false},
		// The occurrence that counts is redacted: no fall-back to the
		// one the pipeline ignored.
		{"first redacted", redactTop, OccurrenceFirst, "", false},
		{"last redacted", redactBottom, OccurrenceLast, "", false},
		{"last, top redacted", redactTop, OccurrenceLast, "bob@customer.example", false},
		// A redacted occurrence may have held another value.
		{"only, one redacted", redactTop, OccurrenceOnly, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb, err := Parse(bytes.NewReader(tt.raw), ParseOptions{IdentityOccurrence: tt.occ})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if fb.Identity != tt.want {
				t.Errorf("identity: got %q, want %q", fb.Identity, tt.want)
			}
			if got := slices.Contains(fb.Warnings, WarnIdentityAmbiguous); got != tt.wantAmbiguous {
				t.Errorf("warning %s: got %v, want %v (warnings %q)", WarnIdentityAmbiguous, got, tt.wantAmbiguous, fb.Warnings)
			}
		})
	}
}

func TestParseOccurrence(t *testing.T) {
	for in, want := range map[string]Occurrence{"": OccurrenceOnly, "only": OccurrenceOnly, "first": OccurrenceFirst, "last": OccurrenceLast} {
		if got, err := ParseOccurrence(in); err != nil || got != want {
			t.Errorf("ParseOccurrence(%q): got %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseOccurrence("top"); err == nil || !strings.Contains(err.Error(), "first, last or only") {
		t.Errorf("ParseOccurrence(top): got %v, want an error naming the choices", err)
	}
}
