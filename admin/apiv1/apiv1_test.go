package apiv1

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-03-01":                time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		"2026-03-01T12:00":          time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		"2026-03-01 12:00:30":       time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC),
		"2026-03-01T12:00:00+02:00": time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "7d", "2026-13-01", "yesterday"} {
		if _, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q): no error", in)
		}
	}
}

// FuzzParseTime: any input gives a time or an error, without panic, and
// a time it accepts formats back to one it accepts again.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-03-01", "2026-03-01T12:00", "2026-03-01T12:00:00+02:00", "7d", "1.5w", "90m", "-1h", "1e400d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			return
		}
		if _, err := ParseTime(tm.Format(time.RFC3339Nano)); err != nil && tm.Year() >= 0 && tm.Year() <= 9999 {
			t.Errorf("ParseTime(%q) = %v, whose RFC 3339 form is refused: %v", s, tm, err)
		}
	})
}
