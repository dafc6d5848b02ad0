package dotreader

import (
	"bufio"
	"io"

	"github.com/emersion/go-smtp"
)

// byteReader reads a DATA transfer the way go-smtp v0.25.1 does: one
// ReadByte per input byte through the end-of-data state machine. It is
// written here from that behaviour (go-smtp's reader is unexported) and
// checked against a running go-smtp server by TestByteReaderIsGoSMTP, so
// that comparing Reader with it compares Reader with go-smtp.
type byteReader struct {
	r       *bufio.Reader
	st      int
	limited bool
	left    int64
}

func newByteReader(r *bufio.Reader, maxBytes int64) *byteReader {
	return &byteReader{r: r, limited: maxBytes > 0, left: maxBytes}
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.limited {
		if r.left <= 0 {
			return 0, smtp.ErrDataTooLarge
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
	}
	n := 0
	var err error
	for n < len(p) && r.st != eof {
		c, e := r.r.ReadByte()
		if e != nil {
			err = e
			if e == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		keep := true
		switch {
		case r.st == beginLine && c == '.':
			r.st, keep = dot, false
		case r.st == beginLine && c == '\r':
			r.st = cr
		case r.st == dot && c == '\r':
			r.st, keep = dotCR, false
		case r.st == dotCR && c == '\n':
			r.st, keep = eof, false
		case r.st == cr && c == '\n':
			r.st = beginLine
		case r.st == data && c == '\r':
			r.st = cr
		case r.st == data:
		default:
			// Any other byte at the start of a line, after a leading dot,
			// after ".\r" or after a CR is ordinary data.
			r.st = data
		}
		if keep {
			p[n] = c
			n++
		}
	}
	if err == nil && r.st == eof {
		err = io.EOF
	}
	if r.limited {
		r.left -= int64(n)
	}
	return n, err
}

// lineLimiter has the behaviour of go-smtp's line length limit, which
// sits between the connection and its bufio.Reader: a read that takes a
// line past limit bytes (a bare LF ends a line; the LF counts towards the
// next) returns no bytes and ErrTooLongLine, and so does every read
// after it.
type lineLimiter struct {
	r     io.Reader
	limit int
	cur   int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.limit > 0 && l.cur > l.limit {
		return 0, smtp.ErrTooLongLine
	}
	n, err := l.r.Read(p)
	if err != nil || l.limit == 0 {
		return n, err
	}
	for _, c := range p[:n] {
		if c == '\n' {
			l.cur = 0
		}
		l.cur++
		if l.cur > l.limit {
			return 0, smtp.ErrTooLongLine
		}
	}
	return n, nil
}

// segments is a reader that returns its data in pieces of the given
// sizes (cycled), like a network connection.
type segments struct {
	data  []byte
	sizes []int
	i     int
}

func (s *segments) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(s.sizes) > 0 {
		n = min(n, max(1, s.sizes[s.i%len(s.sizes)]))
		s.i++
	}
	n = copy(p, s.data[:min(n, len(s.data))])
	s.data = s.data[n:]
	return n, nil
}
