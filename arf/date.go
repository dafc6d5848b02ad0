package arf

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// obsoleteZones maps the zone names of RFC 5322 section 4.3 to offsets in
// seconds east of UTC.
var obsoleteZones = map[string]int{
	"UT": 0, "GMT": 0, "Z": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600,
	"CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600,
	"PST": -8 * 3600, "PDT": -7 * 3600,
}

var errBadDate = errors.New("not an RFC 5322 date")

// ParseDate parses an RFC 5322 date-time, including the obsolete forms of
// section 4.3: zone names (UT, GMT, EST, EDT, CST, CDT, MST, MDT, PST, PDT),
// military single-letter zones (other than Z, read as -0000 because their
// sign was historically used both ways), two- and three-digit years,
// comments and missing seconds or day of week. It also accepts RFC 3339,
// which some reporters write. unknownZone reports a zone that carried no
// usable offset (-0000, a military letter, or a name not listed).
func ParseDate(s string) (t time.Time, unknownZone bool, err error) {
	s = stripComments(s)
	toks := strings.Fields(strings.ReplaceAll(s, ",", ", "))
	if len(toks) == 1 {
		if t, err := time.Parse(time.RFC3339, toks[0]); err == nil {
			return t, false, nil
		}
	}
	// Drop the day of week.
	if len(toks) > 0 && strings.HasSuffix(toks[0], ",") {
		toks = toks[1:]
	} else if len(toks) > 0 && isDayName(toks[0]) {
		toks = toks[1:]
	}
	var clean []string
	for _, t := range toks {
		if t == "," {
			continue
		}
		clean = append(clean, strings.TrimSuffix(t, ","))
	}
	toks = clean
	if len(toks) < 4 {
		return time.Time{}, false, errBadDate
	}
	day, err := strconv.Atoi(toks[0])
	if err != nil || day < 1 || day > 31 {
		return time.Time{}, false, errBadDate
	}
	month, ok := monthNum(toks[1])
	if !ok {
		return time.Time{}, false, errBadDate
	}
	year, err := strconv.Atoi(toks[2])
	if err != nil || year < 0 {
		return time.Time{}, false, errBadDate
	}
	switch len(toks[2]) {
	case 2:
		if year < 50 {
			year += 2000
		} else {
			year += 1900
		}
	case 3:
		year += 1900
	}
	hms := strings.Split(toks[3], ":")
	if len(hms) < 2 || len(hms) > 3 {
		return time.Time{}, false, errBadDate
	}
	var clock [3]int
	for i, p := range hms {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || v > 60 {
			return time.Time{}, false, errBadDate
		}
		clock[i] = v
	}
	if clock[0] > 23 || clock[1] > 59 {
		return time.Time{}, false, errBadDate
	}
	offset := 0
	unknown := true
	if len(toks) >= 5 {
		z := toks[4]
		switch {
		case (z[0] == '+' || z[0] == '-') && len(z) == 5:
			n, err := strconv.Atoi(z[1:])
			if err != nil {
				return time.Time{}, false, errBadDate
			}
			offset = (n/100)*3600 + (n%100)*60
			if z[0] == '-' {
				offset = -offset
			}
			unknown = z == "-0000"
		default:
			if off, ok := obsoleteZones[strings.ToUpper(z)]; ok {
				offset, unknown = off, false
			}
		}
	}
	t = time.Date(year, month, day, clock[0], clock[1], clock[2], 0, time.FixedZone("", offset))
	if t.Day() != day {
		return time.Time{}, false, errBadDate
	}
	return t, unknown, nil
}

func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isDayName(s string) bool {
	switch strings.ToLower(s) {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

func monthNum(s string) (time.Month, bool) {
	if len(s) < 3 {
		return 0, false
	}
	switch strings.ToLower(s[:3]) {
	case "jan":
		return time.January, true
	case "feb":
		return time.February, true
	case "mar":
		return time.March, true
	case "apr":
		return time.April, true
	case "may":
		return time.May, true
	case "jun":
		return time.June, true
	case "jul":
		return time.July, true
	case "aug":
		return time.August, true
	case "sep":
		return time.September, true
	case "oct":
		return time.October, true
	case "nov":
		return time.November, true
	case "dec":
		return time.December, true
	}
	return 0, false
}

// ParseSourceIP reads the forms found in Source-IP fields: a plain IPv4 or
// IPv6 address, an address literal in brackets ("[192.0.2.1]",
// "[IPv6:2001:db8::1]"), and an IPv4-mapped IPv6 address, which is unmapped.
// The zone of a scoped address is dropped.
func ParseSourceIP(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t("); i > 0 {
		s = s[:i] // trailing comment such as "192.0.2.1 (mx.example)"
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if len(s) >= 5 && strings.EqualFold(s[:5], "ipv6:") {
		s = s[5:]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap().WithZone(""), nil
}

// stripAngles removes the angle brackets around an address or msg-id.
func stripAngles(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[i+1 : i+j])
		}
	}
	return s
}

// IsRedacted reports whether an address or identity is a redaction
// placeholder rather than a value: empty, containing "redacted" in any
// case, or a local part of three or more characters made only of x, X, * or
// #.
func IsRedacted(s string) bool {
	s = strings.ToLower(strings.Trim(strings.TrimSpace(s), "[]<>()"))
	if s == "" || s == "redacted" || strings.Contains(s, "redacted") {
		return true
	}
	local, _, _ := strings.Cut(s, "@")
	return len(local) >= 3 && strings.Trim(local, "x*#") == ""
}
