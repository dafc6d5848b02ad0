package quarantine

import "strings"

// Text forms, so that records, queries and reports encode to JSON with
// names rather than numbers.

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	*s = v
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (v *Verdict) UnmarshalText(b []byte) error {
	x, err := ParseVerdict(string(b))
	*v = x
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Class) UnmarshalText(b []byte) error {
	x, err := ParseClass(string(b))
	*c = x
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (g GroupBy) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (g *GroupBy) UnmarshalText(b []byte) error {
	x, err := ParseGroupBy(string(b))
	*g = x
	return err
}

// InDomain reports whether r belongs to the administrative domain d
// (case-insensitive); "" matches every record. Use it to apply a
// domain-scoped admin token to Get, ByMessageID and ByTraceToken, which
// are not scoped themselves.
func (r *Record) InDomain(d string) bool {
	return d == "" || strings.EqualFold(r.Domain, d)
}
