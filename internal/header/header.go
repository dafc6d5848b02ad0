// Package header scans an RFC 5322 header block into its fields. It is
// outguard's one reader of header fields: the code that strips fields
// before relaying and the code that reads identities and report data from
// them agree on what a field is because they share this scanner.
package header

import "bytes"

// Field is one header field as written, or a run of lines that is not a
// field.
type Field struct {
	// Raw is the first line and its continuation lines (RFC 5322 section
	// 2.2.3), line endings included.
	Raw []byte
	// Name is the field name, printable US-ASCII except colon (RFC 5322
	// section 3.6.8), without the white space the obsolete syntax allows
	// before the colon (section 4.5.8). It is nil when Raw is not a field:
	// a line without a colon, a name with other octets, or continuation
	// lines with no field before them.
	Name  []byte
	colon int // index of the colon in Raw
}

// Is reports whether f is a field named name, without regard to ASCII case.
func (f Field) Is(name string) bool {
	return f.Name != nil && EqualFold(f.Name, name)
}

// Orphan reports whether f is continuation lines with no field before
// them, as at the start of a block.
func (f Field) Orphan() bool {
	return len(f.Raw) > 0 && (f.Raw[0] == ' ' || f.Raw[0] == '\t')
}

// Value returns the field body as written: everything after the colon,
// folding line breaks included, without the final line ending. It is nil
// when f is not a field.
func (f Field) Value() []byte {
	if f.Name == nil {
		return nil
	}
	return trimEOL(f.Raw[f.colon+1:])
}

// Lines returns the physical lines of f without their line endings.
func (f Field) Lines() [][]byte {
	var out [][]byte
	rest := f.Raw
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		out = append(out, trimEOL(line))
	}
	return out
}

// Colon is the index of the colon in the first line, or -1 when f is not
// a field.
func (f Field) Colon() int {
	if f.Name == nil {
		return -1
	}
	return f.colon
}

// Scanner walks a header block field by field. Lines end at LF; a CR just
// before the LF belongs to the line ending. The block ends at the first
// empty line or at the end of the input.
type Scanner struct {
	block []byte
	off   int // bytes consumed by the fields returned so far
	f     Field
	done  bool
}

// NewScanner returns a Scanner over block. The fields it returns share
// block's memory.
func NewScanner(block []byte) *Scanner { return &Scanner{block: block} }

// Next advances to the next field and reports whether there is one. It
// returns false at the empty line that ends the block or at the end of the
// input.
func (s *Scanner) Next() bool {
	if s.done {
		return false
	}
	rest := s.block[s.off:]
	first, n := nextLine(rest)
	if len(first) == 0 || first[0] == '\n' || (first[0] == '\r' && (len(first) == 1 || first[1] == '\n')) {
		s.done = true // the empty line, or the end of the input
		return false
	}
	for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t') {
		_, m := nextLine(rest[n:])
		n += m
	}
	s.f = Field{Raw: rest[:n:n]}
	if first[0] != ' ' && first[0] != '\t' {
		if colon := bytes.IndexByte(first, ':'); colon > 0 {
			end := colon
			for end > 0 && (first[end-1] == ' ' || first[end-1] == '\t') {
				end--
			}
			if name := first[:end]; ValidName(name) {
				s.f.Name, s.f.colon = name, colon
			}
		}
	}
	s.off += n
	return true
}

// Field returns the field Next found.
func (s *Scanner) Field() Field { return s.f }

// Offset is the number of bytes of the block the returned fields cover.
// Once Next has returned false, block[Offset():] is the empty line that
// ended the block and what follows it.
func (s *Scanner) Offset() int { return s.off }

// Fields returns every field and non-field line of block, in order.
func Fields(block []byte) []Field {
	var out []Field
	s := NewScanner(block)
	for s.Next() {
		out = append(out, s.Field())
	}
	return out
}

// Remove returns block without every field named in names (any case),
// continuation lines included, so a reader of the result finds none of
// them. Every other byte, the empty line and what follows it are kept as
// they are. The input is not modified.
func Remove(block []byte, names ...string) []byte {
	out := make([]byte, 0, len(block))
	return AppendRemove(out, block, names...)
}

// AppendRemove is Remove appending to dst.
func AppendRemove(dst, block []byte, names ...string) []byte {
	s := NewScanner(block)
	for s.Next() {
		f := s.Field()
		if !f.isAny(names) {
			dst = append(dst, f.Raw...)
		}
	}
	return append(dst, block[s.Offset():]...)
}

func (f Field) isAny(names []string) bool {
	if f.Name == nil {
		return false
	}
	for _, n := range names {
		if EqualFold(f.Name, n) {
			return true
		}
	}
	return false
}

// ValidName reports whether b is a field name: one or more printable
// US-ASCII characters other than colon (RFC 5322 section 3.6.8).
func ValidName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// EqualFold compares a field name with s without regard to ASCII case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// nextLine returns the first line of b, its LF included, and its length.
func nextLine(b []byte) ([]byte, int) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], i + 1
	}
	return b, len(b)
}

// trimEOL removes a final LF and the CR before it, or a final lone CR.
func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}
