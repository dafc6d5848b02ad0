// Package duration parses the durations outguard reads from its
// configuration, its admin API and its command line: Go's forms ("90s",
// "10m", "1h30m") plus days and weeks ("30d", "2w"); "0" is zero. It is a
// leaf so that config and admin share it without importing each other
// (docs/config-store.md describes the forms).
package duration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxCount bounds the number before a day or week suffix.
const maxCount = 36500

// Parse parses s, ignoring surrounding white space. Negative durations are
// refused.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || !(v >= 0) || v > maxCount { // !(v >= 0) also refuses NaN
				return 0, fmt.Errorf("invalid duration %q: use a number of days or weeks like \"30d\" or \"2w\"", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: use forms like \"90s\", \"10m\", \"2h\", \"30d\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return v, nil
}
