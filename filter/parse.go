package filter

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // registers charset decoders for text parts
	"github.com/emersion/go-message/mail"

	"github.com/outguard/outguard/internal/htmltext"
)

// Limits bound the work and memory of ParseMessage on hostile input. Zero
// fields take the defaults below.
type Limits struct {
	// MaxDepth bounds the nesting of multiparts and attached messages.
	// Default 16.
	MaxDepth int
	// MaxParts bounds the number of leaf parts walked. Default 1000.
	MaxParts int
	// MaxHeaderBytes bounds the top-level header. Default 1 MiB.
	MaxHeaderBytes int64
	// MaxPartBytes bounds the decoded bytes kept for one part. Default
	// 25 MiB (the default message size limit: no transfer encoding makes
	// a part larger when decoded, so no part of a message within that
	// limit is cut, except text converted to UTF-8).
	MaxPartBytes int64
	// MaxDecodedBytes bounds the decoded bytes kept for the whole message.
	// Default 50 MiB.
	MaxDecodedBytes int64
	// MaxArchiveEntries bounds the entries listed per archive. Default
	// 5000.
	MaxArchiveEntries int
	// MaxArchiveBytes bounds the uncompressed bytes read from the entries
	// of one attached archive, nested archives included. Entries past it
	// still have their first ArchiveHeadBytes read. Default 25 MiB.
	MaxArchiveBytes int64
	// MaxArchiveDepth bounds the nesting of archives in archives. Default 8.
	MaxArchiveDepth int
	// MaxURLs bounds the distinct URLs collected. Default 1000.
	MaxURLs int
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:          16,
		MaxParts:          1000,
		MaxHeaderBytes:    1 << 20,
		MaxPartBytes:      25 << 20,
		MaxDecodedBytes:   50 << 20,
		MaxArchiveEntries: 5000,
		MaxArchiveBytes:   25 << 20,
		MaxArchiveDepth:   8,
		MaxURLs:           1000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	setIfZero(&l.MaxDepth, d.MaxDepth)
	setIfZero(&l.MaxParts, d.MaxParts)
	setIfZero(&l.MaxHeaderBytes, d.MaxHeaderBytes)
	setIfZero(&l.MaxPartBytes, d.MaxPartBytes)
	setIfZero(&l.MaxDecodedBytes, d.MaxDecodedBytes)
	setIfZero(&l.MaxArchiveEntries, d.MaxArchiveEntries)
	setIfZero(&l.MaxArchiveBytes, d.MaxArchiveBytes)
	setIfZero(&l.MaxArchiveDepth, d.MaxArchiveDepth)
	setIfZero(&l.MaxURLs, d.MaxURLs)
	return l
}

func setIfZero[T int | int64](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// ParseBytes parses a message held in memory; see ParseMessage.
func ParseBytes(raw []byte, lim Limits) (*Message, error) {
	return ParseMessage(bytes.NewReader(raw), int64(len(raw)), lim)
}

// ParseMessage parses the size bytes of r as an RFC 5322 message: header,
// MIME tree, decoded parts, text, URLs and archive listings. A leading mbox
// "From " line is skipped.
//
// Malformed input is not an error: what could not be parsed is recorded in
// Message.Defects and the rest is still walked, so that engines see as much
// as possible. The error is non-nil only when r itself fails to read.
// The returned Message keeps r for Message.Raw: r must stay readable until
// classification is over.
func ParseMessage(r io.ReaderAt, size int64, lim Limits) (*Message, error) {
	if size < 0 {
		return nil, fmt.Errorf("filter: negative message size %d", size)
	}
	m := &Message{raw: r, size: size}
	w := &walker{m: m, lim: lim.withDefaults(), seen: map[string]bool{}}
	// Transfer decoding never makes content larger, so the decoded parts
	// of most messages fit in this much (text converted to UTF-8 may grow).
	w.arena = make([]byte, 0, min(size, w.lim.MaxDecodedBytes, arenaMax))
	// Skip an mbox "From " line, which is not a header.
	var start int64
	var from [5]byte
	if n, _ := r.ReadAt(from[:min(int64(len(from)), size)], 0); string(from[:n]) == "From " {
		first := make([]byte, min(1024, size))
		n, _ := r.ReadAt(first, 0)
		if i := bytes.IndexByte(first[:n], '\n'); i >= 0 {
			start = int64(i + 1)
		} else {
			w.defect("mbox From line too long")
		}
	}
	src := &errReader{r: io.NewSectionReader(r, start, size-start)}
	// go-message reads through a bufio.Reader of its own.
	e, err := message.ReadWithOptions(src, &message.ReadOptions{MaxHeaderBytes: w.lim.MaxHeaderBytes})
	switch {
	case e == nil:
		// Without a readable header, treat the whole input as plain text so
		// that content rules still see it.
		w.defect("header: " + err.Error())
		m.Header = mail.Header{}
		src = &errReader{r: io.NewSectionReader(r, start, size-start)}
		w.leaf(&message.Entity{Body: src}, nil, "")
	default:
		if err != nil {
			w.defect("top level: " + err.Error())
		}
		m.Header = mail.Header{Header: e.Header}
		w.entity(e, nil, 0, "")
	}
	if src.err != nil {
		return nil, fmt.Errorf("filter: reading message: %w", src.err)
	}
	// One text is the body as it is; several are joined in one allocation
	// of the exact size.
	m.BodyText = strings.Join(w.texts, "\n")
	m.Gaps = w.gaps
	return m, nil
}

// errReader remembers the first error of r other than io.EOF, so that read
// failures of the message source are told apart from malformed MIME.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

type walker struct {
	m       *Message
	lim     Limits
	decoded int64
	// texts are the trimmed texts of the inline parts, for BodyText.
	texts   []string
	seen    map[string]bool
	flagged map[string]bool
	gaps    []Gap
	// arena holds the decoded parts one after the other, so that a
	// message's parts cost one allocation instead of a growing buffer each.
	arena []byte
	// skipped counts the entities walked past a limit without reading.
	skipped int
	// abort ends the walk: the input went past the bounds of the walk past
	// a limit, so what follows is hostile and of unknown kind.
	abort bool
}

// Bounds of the walk past a limit: it reads part headers only, to tell
// what was left unscanned, and gives up this far past MaxDepth or after
// this many entities, recording content of unknown kind and ending the
// walk. Every level of nesting costs a pass of go-message's boundary
// search over the rest of the message, so the depth bound is what bounds
// the parsing time of a large message.
const (
	skipExtraDepth = 4
	skipMaxParts   = 2000
)

// gap records content left unscanned.
func (w *walker) gap(limit string, kind GapKind, path string) {
	w.gaps = addGap(w.gaps, Gap{Limit: limit, Kind: kind, Path: displayPath(path)})
}

// skip walks an entity past a limit without decoding it, recording a gap
// of the kind of every leaf found (from its header), so that what the
// engines did not see is known.
func (w *walker) skip(e *message.Entity, depth int, path, limit string) {
	w.skipped++
	if depth > w.lim.MaxDepth+skipExtraDepth || w.skipped > skipMaxParts {
		w.gap(limit, GapExecutable, path)
		w.abort = true
		return
	}
	if mr := e.MultipartReader(); mr != nil {
		for i := 1; ; i++ {
			p, err := mr.NextPart()
			if p == nil || err == io.EOF {
				if err != nil && err != io.EOF {
					w.gap(limit, GapExecutable, path)
				}
				return
			}
			w.skip(p, depth+1, childPath(path, i), limit)
			if w.abort {
				return
			}
		}
	}
	mt, _, _ := e.Header.ContentType()
	if strings.EqualFold(mt, "message/rfc822") || strings.EqualFold(mt, "message/global") {
		inner, _ := message.ReadWithOptions(e.Body, &message.ReadOptions{MaxHeaderBytes: w.lim.MaxHeaderBytes})
		if inner == nil {
			w.gap(limit, GapExecutable, path)
			return
		}
		w.skip(inner, depth+1, childPath(path, 1), limit)
		return
	}
	w.gap(limit, gapKindOf(e.Header), path)
}

// maxDefects bounds Message.Defects.
const maxDefects = 50

// defect records a problem once.
func (w *walker) defect(s string) {
	if w.flagged == nil {
		w.flagged = map[string]bool{}
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if len(w.m.Defects) >= maxDefects {
		return
	}
	if len(w.m.Defects) == maxDefects-1 {
		s = "more defects not listed"
	}
	if !w.flagged[s] {
		w.flagged[s] = true
		w.m.Defects = append(w.m.Defects, s)
	}
}

func childPath(parent string, i int) string {
	if parent == "" {
		return strconv.Itoa(i)
	}
	return parent + "." + strconv.Itoa(i)
}

// entity walks one entity; raw is its body before transfer decoding, or
// nil where only the decoded body is at hand.
func (w *walker) entity(e *message.Entity, raw io.Reader, depth int, path string) {
	if depth > w.lim.MaxDepth {
		w.defect(fmt.Sprintf("MIME nesting deeper than %d: rest skipped", w.lim.MaxDepth))
		w.skip(e, depth, path, LimitDepth)
		return
	}
	if mr := newRawParts(e); mr != nil {
		for i := 1; ; i++ {
			p, praw, err := mr.next()
			if err == io.EOF {
				return
			}
			if p == nil {
				w.defect("multipart " + path + ": " + err.Error())
				return
			}
			if err != nil {
				w.defect("part " + childPath(path, i) + ": " + err.Error())
			}
			if len(w.m.Parts) >= w.lim.MaxParts {
				w.defect(fmt.Sprintf("more than %d parts: rest skipped", w.lim.MaxParts))
				w.skip(p, depth+1, childPath(path, i), LimitParts)
			} else {
				w.entity(p, praw, depth+1, childPath(path, i))
			}
			if w.abort {
				return
			}
		}
	}
	mt, _, _ := e.Header.ContentType()
	if strings.EqualFold(mt, "message/rfc822") || strings.EqualFold(mt, "message/global") {
		inner, err := message.ReadWithOptions(e.Body, &message.ReadOptions{MaxHeaderBytes: w.lim.MaxHeaderBytes})
		if inner == nil {
			w.defect("attached message " + path + ": " + err.Error())
			return
		}
		if err != nil {
			w.defect("attached message " + path + ": " + err.Error())
		}
		w.entity(inner, nil, depth+1, childPath(path, 1))
		return
	}
	if len(w.m.Parts) >= w.lim.MaxParts {
		w.defect(fmt.Sprintf("more than %d parts: rest skipped", w.lim.MaxParts))
		w.skip(e, depth, path, LimitParts)
		return
	}
	w.leaf(e, raw, path)
}

// arenaMax bounds the first arena; a message whose decoded parts need more
// gets a larger one as its parts are read.
const arenaMax = 32 << 20

// readPart reads at most budget bytes of r into the arena and returns
// them, with a capacity equal to their length so that nobody appending to
// one part writes over the next.
func (w *walker) readPart(r io.Reader, budget int64) ([]byte, error) {
	start := len(w.arena)
	for int64(len(w.arena)-start) < budget {
		if len(w.arena) == cap(w.arena) {
			// Move this part to an arena twice its size (or 4 KiB), bounded
			// by what the budget still allows.
			part := w.arena[start:]
			grow := min(int64(max(len(part), 4096)), budget-int64(len(part)))
			next := make([]byte, len(part), int64(len(part))+grow)
			copy(next, part)
			w.arena, start = next, 0
		}
		end := min(int64(cap(w.arena)), int64(start)+budget)
		n, err := r.Read(w.arena[len(w.arena):end])
		w.arena = w.arena[:len(w.arena)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return w.arena[start:len(w.arena):len(w.arena)], err
		}
	}
	return w.arena[start:len(w.arena):len(w.arena)], nil
}

// leaf reads and analyses one non-multipart entity; raw is its body
// before transfer decoding, or nil.
func (w *walker) leaf(e *message.Entity, raw io.Reader, path string) {
	p := &Part{Path: path}
	w.m.Parts = append(w.m.Parts, p)
	p.ContentType, p.Disposition, p.Filename = partMeta(e.Header)

	budget := min(w.lim.MaxPartBytes, w.lim.MaxDecodedBytes-w.decoded)
	if budget < 0 {
		budget = 0
	}
	body := e.Body
	if _, ok := body.(*quotedprintable.Reader); ok && raw != nil {
		// The body is quoted-printable and nothing else (no charset
		// conversion): decode it in bulk, with the same result, from the
		// buffer go-message's decoder would have read (rawParts.next).
		body = newQPReader(raw)
	}
	data, err := w.readPart(body, budget)
	if err != nil {
		w.defect("part " + displayPath(path) + ": " + err.Error())
	}
	n := int64(len(data))
	p.Data = data
	p.Size = n
	w.decoded += n
	if n == budget {
		// Count the rest without keeping it.
		rest, _ := io.Copy(io.Discard, body)
		if rest > 0 {
			p.Size += rest
			p.Truncated = true
			if budget < w.lim.MaxPartBytes {
				w.defect(fmt.Sprintf("message decodes to more than %d bytes: parts truncated", w.lim.MaxDecodedBytes))
				w.gap(LimitDecodedBytes, gapKind(p.ContentType, p.Filename), path)
			} else {
				w.defect(fmt.Sprintf("part %s decodes to more than %d bytes: truncated", displayPath(path), w.lim.MaxPartBytes))
				w.gap(LimitPartBytes, gapKind(p.ContentType, p.Filename), path)
			}
		}
	}

	lowerName := strings.ToLower(p.Filename)
	switch {
	case p.ContentType == "text/html" || hasAnySuffix(lowerName, ".html", ".htm", ".shtml", ".xhtml"):
		p.HTML = true
		doc := htmltext.Parse(p.Data)
		p.Text = doc.Text
		p.PasswordForm = doc.PasswordForm
		for _, l := range doc.Links {
			w.addURL(l.Href, l.Text, true)
		}
		w.urlsInText(p.Text)
	case strings.HasPrefix(p.ContentType, "text/") && p.ContentType != "text/calendar":
		p.Text = string(p.Data)
		w.urlsInText(p.Text)
	case p.ContentType == "text/calendar":
		p.Text = string(p.Data)
	}
	if t := strings.TrimSpace(p.Text); t != "" && !p.IsAttachment() {
		w.texts = append(w.texts, t)
	}
	if isZip(p) {
		p.Archive = listZip(p.Data, w.lim, w.defect, func(limit, entry string) {
			w.gap(limit, GapExecutable, joinEntry(displayPath(path), entry))
		})
	}
}

func displayPath(p string) string {
	if p == "" {
		return "body"
	}
	return p
}

// partMeta returns the media type, disposition and file name of a part,
// falling back to a lenient scan when the header values do not parse.
func partMeta(h message.Header) (ct, disp, name string) {
	ct, params, err := h.ContentType()
	ct = strings.ToLower(strings.TrimSpace(ct))
	if err != nil {
		raw := h.Get("Content-Type")
		ct = strings.ToLower(strings.TrimSpace(strings.SplitN(raw, ";", 2)[0]))
		params = map[string]string{"name": lenientParam(raw, "name")}
	}
	if ct == "" {
		ct = "text/plain"
	}
	disp, dparams, err := h.ContentDisposition()
	if err != nil {
		raw := h.Get("Content-Disposition")
		disp = strings.TrimSpace(strings.SplitN(raw, ";", 2)[0])
		dparams = map[string]string{"filename": lenientParam(raw, "filename")}
	}
	disp = strings.ToLower(disp)
	name = dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	return ct, disp, decodeWords(name)
}

var paramRE = regexp.MustCompile(`(?i)(?:^|;)\s*([a-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)`)

// lenientParam finds a parameter in a header value that mime.ParseMediaType
// rejected, so that a deliberately malformed header does not hide a file
// name.
func lenientParam(v, key string) string {
	for _, m := range paramRE.FindAllStringSubmatch(v, 50) {
		k := strings.ToLower(strings.TrimSuffix(m[1], "*"))
		if k == key || strings.HasPrefix(k, key+"*") {
			return strings.Trim(m[2], `"`)
		}
	}
	return ""
}

var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	if message.CharsetReader == nil {
		return nil, fmt.Errorf("unknown charset %q", cs)
	}
	return message.CharsetReader(cs, r)
}}

// decodeWords decodes RFC 2047 encoded words left in a parameter value.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

func hasAnySuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}
