package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{" 10m ", 10 * time.Minute, true},
		{"1.5d", 36 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"0", 0, true},
		{"36500d", 36500 * 24 * time.Hour, true},
		{"36501d", 0, false},
		{"-1m", 0, false},
		{"-3d", 0, false},
		{"NaNd", 0, false},
		{"Infw", 0, false},
		{"d", 0, false},
		{"5 minutes", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParse checks that no input gives a negative duration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"90s", "7d", "NaNd", "-0d", "1e3w", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := Parse(s); err == nil && d < 0 {
			t.Fatalf("Parse(%q) = %v", s, d)
		}
	})
}
