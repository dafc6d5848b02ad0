package quarantine

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 charsets

	"github.com/outguard/outguard/internal/htmltext"
)

// Bounds of the rendering, so a hostile message costs bounded time and
// memory on top of its own size.
const (
	maxRenderHeaders  = 500
	maxHeaderValueLen = 4 << 10
	maxRenderParts    = 200
	maxRenderDepth    = 20
	maxPartRead       = 4 << 20
)

// render parses raw and returns its header fields, a text rendering of
// its body capped at limit bytes and its leaf parts. It never fails: what
// cannot be parsed is shown as text.
func render(raw []byte, limit int) *View {
	v := &View{}
	ent, err := message.Read(bytes.NewReader(raw))
	if ent == nil {
		// Not even a header: show the bytes as text.
		v.Body, v.Truncated = safeText(string(raw), limit)
		v.BodyType = "text/plain"
		return v
	}
	_ = err // unknown charsets and encodings still give a usable entity
	fields := ent.Header.Fields()
	for fields.Next() && len(v.Header) < maxRenderHeaders {
		val, err := fields.Text()
		if err != nil {
			val = fields.Value()
		}
		val, _ = safeText(val, maxHeaderValueLen)
		name, _ := safeText(fields.Key(), 200)
		v.Header = append(v.Header, HeaderField{Name: name, Value: strings.ReplaceAll(val, "\n", " ")})
	}
	var plain, htmlText *string
	walkParts(ent, 0, v, func(typ string, body []byte) {
		switch {
		case typ == "text/plain" && plain == nil:
			s := string(body)
			plain = &s
		case typ == "text/html" && htmlText == nil:
			s := htmltext.Text(body)
			htmlText = &s
		}
	})
	switch {
	case plain != nil:
		v.BodyType = "text/plain"
		v.Body, v.Truncated = safeText(*plain, limit)
	case htmlText != nil:
		v.BodyType = "text/html"
		v.Body, v.Truncated = safeText(*htmlText, limit)
	}
	return v
}

// walkParts visits the leaf parts of ent depth-first, recording each in
// v.Parts and passing inline text parts to text.
func walkParts(ent *message.Entity, depth int, v *View, text func(typ string, body []byte)) {
	if len(v.Parts) >= maxRenderParts {
		return
	}
	typ, params, err := ent.Header.ContentType()
	if err != nil || typ == "" {
		typ = "text/plain"
	}
	if mr := ent.MultipartReader(); mr != nil {
		if depth >= maxRenderDepth {
			return
		}
		for len(v.Parts) < maxRenderParts {
			p, err := mr.NextPart()
			if err != nil {
				if errors.Is(err, io.EOF) || p == nil {
					return
				}
			}
			if p == nil {
				return
			}
			walkParts(p, depth+1, v, text)
		}
		return
	}
	_ = params
	disp, dparams, _ := ent.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		_, cparams, _ := mime.ParseMediaType(ent.Header.Get("Content-Type"))
		name = cparams["name"]
	}
	name, _ = safeText(name, 255)
	var body []byte
	isText := (typ == "text/plain" || typ == "text/html") && disp != "attachment"
	var size int64
	if isText {
		body, _ = io.ReadAll(io.LimitReader(ent.Body, maxPartRead))
		size = int64(len(body))
	}
	n, _ := io.Copy(io.Discard, ent.Body)
	size += n
	v.Parts = append(v.Parts, Part{Type: typ, Filename: name, Size: size})
	if isText {
		text(typ, body)
	}
}

// safeText makes s safe to show: line ends normalised to \n, control and
// bidirectional formatting characters removed (tab and newline kept),
// invalid UTF-8 replaced, and cut to at most limit bytes on a character
// boundary. It reports whether it cut.
func safeText(s string, limit int) (string, bool) {
	var b strings.Builder
	b.Grow(min(len(s), limit))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				continue
			}
			r = '\n'
		case r == '\n' || r == '\t':
		case r == utf8.RuneError && n == 1:
			r = unicode.ReplacementChar
		case unicode.IsControl(r), unicode.Is(unicode.Bidi_Control, r), r == '\u2028', r == '\u2029':
			continue
		}
		if b.Len()+utf8.RuneLen(r) > limit {
			return b.String(), true
		}
		b.WriteRune(r)
	}
	return b.String(), false
}
