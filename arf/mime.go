package arf

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/outguard/outguard/internal/header"
)

// field is one header field as found: its name as written and its value
// unfolded, without the leading and trailing white space.
type field struct {
	name  string
	value string
}

// entity is one MIME entity cut out of a bounded input buffer.
type entity struct {
	fields    []field
	rawHeader []byte // the header block as written, without the blank line
	body      []byte // the body as written, not decoded
}

// get returns the topmost value of the field named name (any case).
func (e *entity) get(name string) string {
	for _, f := range e.fields {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

// limits are the bounds the MIME walker enforces on hostile input.
type limits struct {
	maxFields     int // header fields in one header block
	maxFieldBytes int // bytes in one (folded) field
	maxParts      int // MIME parts in the whole tree
	maxDepth      int // nesting of multiparts and messages
	parts         int // parts seen so far
}

func (l *limits) part() error {
	l.parts++
	if l.parts > l.maxParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrLimitExceeded, l.maxParts)
	}
	return nil
}

// splitHeader cuts b at the first empty line. A header block that runs to
// the end of b has an empty body.
func splitHeader(b []byte) (header, body []byte) {
	if len(b) > 0 && (b[0] == '\n' || (b[0] == '\r' && len(b) > 1 && b[1] == '\n')) {
		// Empty header block.
		if b[0] == '\n' {
			return nil, b[1:]
		}
		return nil, b[2:]
	}
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil
		}
		next := i + j + 1
		if next < len(b) && b[next] == '\n' {
			return b[:next], b[next+1:]
		}
		if next+1 < len(b) && b[next] == '\r' && b[next+1] == '\n' {
			return b[:next], b[next+2:]
		}
		i = next
	}
	return b, nil
}

// parseFields parses a header block. It tolerates LF line endings, white
// space before the colon, and a leading continuation line (dropped with no
// error). It fails only on the limits; lines without a colon are skipped,
// and reported through bad so callers can tell a header from prose.
func parseFields(h []byte, lim *limits) (fs []field, bad int, err error) {
	fs, bad, _, err = scanFields(h, lim, false)
	return fs, bad, err
}

// parseFieldsSkipping is parseFields for a header block that outguard only
// reads from (the complained-about original): a field longer than
// lim.maxFieldBytes is dropped and counted in skipped instead of failing the
// whole parse, so padding one field cannot make a message unattributable.
// The field count limit still applies.
func parseFieldsSkipping(h []byte, lim *limits) (fs []field, bad, skipped int, err error) {
	return scanFields(h, lim, true)
}

func scanFields(h []byte, lim *limits, skipOversized bool) (fs []field, bad, skipped int, err error) {
	// Empty lines are skipped: a header scan ends at one, so scanning
	// starts again after it.
	for len(h) > 0 {
		s := header.NewScanner(h)
		for s.Next() {
			f := s.Field()
			if f.Orphan() {
				continue // continuation lines with no field: dropped
			}
			if unfoldedLen(f.Raw) > lim.maxFieldBytes {
				if !skipOversized {
					return nil, bad, skipped, fmt.Errorf("%w: a header field longer than %d bytes", ErrLimitExceeded, lim.maxFieldBytes)
				}
				skipped++
				continue
			}
			if f.Name == nil {
				bad++
				continue
			}
			if len(fs) >= lim.maxFields {
				return nil, bad, skipped, fmt.Errorf("%w: more than %d header fields", ErrLimitExceeded, lim.maxFields)
			}
			fs = append(fs, field{name: string(f.Name), value: unfold(f.Value())})
		}
		h = h[s.Offset():]
		_, n := nextLine(h)
		h = h[n:]
	}
	return fs, bad, skipped, nil
}

// unfoldedLen is the length of a field's lines without their line endings,
// joined by one space each.
func unfoldedLen(raw []byte) int {
	n, lines := 0, 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		n += len(bytes.TrimSuffix(line, []byte("\r")))
		lines++
	}
	return n + lines - 1
}

// nextLine returns the first line of b, its LF included, and its length.
func nextLine(b []byte) ([]byte, int) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], i + 1
	}
	return b, len(b)
}

func unfold(v []byte) string {
	// Folding already joined lines with one space; collapse runs of white
	// space so values compare plainly.
	s := strings.Join(strings.Fields(string(v)), " ")
	return s
}

// parseEntity splits b into header fields and body.
func parseEntity(b []byte, lim *limits) (*entity, error) {
	h, body := splitHeader(b)
	fs, _, err := parseFields(h, lim)
	if err != nil {
		return nil, err
	}
	return &entity{fields: fs, rawHeader: h, body: body}, nil
}

// mediaType returns the lower-case media type and its parameters. A
// malformed Content-Type is read leniently: the type before the first
// semicolon, and a boundary or report-type found by name. The default is
// text/plain.
func (e *entity) mediaType() (string, map[string]string) {
	ct := e.get("Content-Type")
	if ct == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		return strings.ToLower(mt), params
	}
	mt, rest, _ := strings.Cut(ct, ";")
	params = map[string]string{}
	for _, p := range strings.Split(rest, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' {
			v = v[1 : n-1]
		}
		params[strings.ToLower(strings.TrimSpace(k))] = v
	}
	return strings.ToLower(strings.TrimSpace(mt)), params
}

// decodedBody undoes the Content-Transfer-Encoding. Unknown encodings are
// passed through as they are. Broken base64 is decoded as far as it goes.
func (e *entity) decodedBody() ([]byte, string) {
	cte := strings.ToLower(strings.TrimSpace(e.get("Content-Transfer-Encoding")))
	switch cte {
	case "base64":
		clean := make([]byte, 0, len(e.body))
		for _, c := range e.body {
			if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
				continue
			}
			clean = append(clean, c)
		}
		clean = bytes.TrimRight(clean, "=")
		out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
		n, err := base64.RawStdEncoding.Decode(out, clean)
		if err != nil {
			return out[:n], cte
		}
		return out[:n], cte
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(e.body)))
		if err != nil {
			return out, cte
		}
		return out, cte
	}
	return e.body, cte
}

// splitMultipart returns the parts of a multipart body delimited by
// boundary. Text before the first delimiter (the preamble) and after the
// closing delimiter (the epilogue) is dropped. A missing closing delimiter is
// tolerated.
func splitMultipart(body []byte, boundary string, lim *limits) ([][]byte, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart without a boundary", ErrUnreadable)
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\n')
		end := len(body)
		if j >= 0 {
			end = i + j + 1
		}
		line := body[i:end]
		if bytes.HasPrefix(line, delim) {
			rest := bytes.TrimRight(line[len(delim):], " \t\r\n")
			closing := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || closing {
				if start >= 0 {
					parts = append(parts, trimDelimiterNewline(body[start:i]))
					if err := lim.part(); err != nil {
						return nil, err
					}
				}
				if closing {
					return parts, nil
				}
				start = end
			}
		}
		i = end
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
		if err := lim.part(); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// trimDelimiterNewline removes the line break that belongs to the following
// boundary delimiter (RFC 2046 section 5.1.1).
func trimDelimiterNewline(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}
