package filter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// rawParts reads the parts of a multipart entity as go-message's
// MultipartReader does, and also hands out each part's body before
// transfer decoding.
type rawParts struct{ r *textproto.MultipartReader }

// newRawParts returns the parts of e, or nil if e is not a multipart.
func newRawParts(e *message.Entity) *rawParts {
	mt, params, _ := e.Header.ContentType()
	if !strings.HasPrefix(mt, "multipart/") {
		return nil
	}
	return &rawParts{textproto.NewMultipartReader(e.Body, params["boundary"])}
}

// next returns the next part as message.Entity (decoding as go-message
// does, with its error for an unknown encoding or charset) and its raw
// body.
//
// The raw body of a quoted-printable part is a *bufio.Reader of the
// default size: go-message's decoder (mime/quotedprintable) takes such a
// reader as its buffer instead of making its own, so that when the walk
// decodes the part itself from the same buffer, the part costs one buffer.
func (m *rawParts) next() (*message.Entity, io.Reader, error) {
	p, err := m.r.NextPart()
	if err != nil {
		return nil, nil, err
	}
	var raw io.Reader = p
	// The test of message.New.
	if strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) == "quoted-printable" {
		raw = bufio.NewReader(p)
	}
	e, err := message.New(message.Header{Header: p.Header}, raw)
	return e, raw, err
}

// qpReader decodes quoted-printable (RFC 2045, section 6.7) exactly as
// mime/quotedprintable.Reader does, the same bytes and the same errors at
// the same places, but a run of plain bytes at a time instead of one byte
// at a time. Like it, it reads lines through a bufio.Reader of the default
// size, so that a line longer than that ends the part with
// bufio.ErrBufferFull as it does there.
type qpReader struct {
	br   *bufio.Reader
	rerr error  // the error after the current line
	line []byte // what is left of the current line
}

// newQPReader returns a reader decoding r; a *bufio.Reader of the default
// size or more is used as the buffer as it is.
func newQPReader(r io.Reader) *qpReader { return &qpReader{br: bufio.NewReader(r)} }

func qpHex(b byte) (byte, error) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', nil
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, nil
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, nil
	}
	return 0, fmt.Errorf("quotedprintable: invalid hex byte 0x%02x", b)
}

// qpPlain marks the bytes copied as they are: printable ASCII but '=',
// tab, CR, LF and bytes above 0x7F.
var qpPlain = func() (t [256]bool) {
	for b := range 256 {
		t[b] = b >= ' ' && b <= '~' && b != '=' || b == '\t' || b == '\r' || b == '\n' || b >= 0x80
	}
	return t
}()

// nextLine reads the next line and prepares it: trailing white space
// dropped, a soft line break removed, a hard one kept as CRLF or LF.
func (r *qpReader) nextLine() {
	whole, err := r.br.ReadSlice('\n')
	r.rerr = err
	end := len(whole)
	for end > 0 {
		c := whole[end-1]
		if c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			break
		}
		end--
	}
	line := whole[:end:end]
	switch {
	case end > 0 && line[end-1] == '=':
		rest := bytes.TrimLeft(whole[end:], " \t")
		line = line[:end-1]
		if !bytes.HasPrefix(rest, []byte("\n")) && !bytes.HasPrefix(rest, []byte("\r\n")) &&
			!(len(rest) == 0 && len(line) > 0 && err == io.EOF) {
			r.rerr = fmt.Errorf("quotedprintable: invalid bytes after =: %q", rest)
		}
	case len(whole) > 0 && whole[len(whole)-1] == '\n':
		// The stripped white space ends with the line break itself.
		if len(whole) > 1 && whole[len(whole)-2] == '\r' {
			line = whole[:end+2]
			line[end], line[end+1] = '\r', '\n'
		} else {
			line = whole[:end+1]
			line[end] = '\n'
		}
	}
	r.line = line
}

func (r *qpReader) Read(p []byte) (n int, err error) {
	for len(p) > 0 {
		if len(r.line) == 0 {
			if r.rerr != nil {
				return n, r.rerr
			}
			r.nextLine()
			continue
		}
		// A run of plain bytes.
		line := r.line
		k := 0
		for k < len(line) && k < len(p) && qpPlain[line[k]] {
			k++
		}
		if k > 0 {
			copy(p, line[:k])
			p, r.line, n = p[k:], line[k:], n+k
			continue
		}
		b := line[0]
		if b != '=' {
			return n, fmt.Errorf("quotedprintable: invalid unescaped byte 0x%02x in body", b)
		}
		hi, err := qpHexPair(line)
		if err != nil {
			if len(line) >= 2 && line[1] != '\r' && line[1] != '\n' {
				p[0] = '='
				p, r.line, n = p[1:], line[1:], n+1
				continue
			}
			return n, err
		}
		p[0] = hi
		p, r.line, n = p[1:], line[3:], n+1
	}
	return n, nil
}

// qpHexPair decodes the two hex digits after the '=' at line[0].
func qpHexPair(line []byte) (byte, error) {
	if len(line) < 3 {
		return 0, io.ErrUnexpectedEOF
	}
	hb, err := qpHex(line[1])
	if err != nil {
		return 0, err
	}
	lb, err := qpHex(line[2])
	if err != nil {
		return 0, err
	}
	return hb<<4 | lb, nil
}
