// Package dotreader reads an SMTP DATA transfer (RFC 5321 section 4.5.2,
// dot-stuffing; end of data at CRLF "." CRLF) from a bufio.Reader in
// bulk, with exactly the io.Reader behaviour of go-smtp's DATA reader
// (v0.25.1, data.go), which reads one byte at a time. smtpd reads the
// messages of plain-text DATA transfers with it (docs/architecture.md,
// "The DATA reader"); the same code is the change go-smtp could take
// upstream (bench/README.md has the figures). go-smtp is neither vendored
// nor forked.
//
// The behaviour kept, byte for byte and error for error:
//
//   - a line starts only after CRLF (or at the start): a bare LF does not
//     start one, so "\n.\r\n" neither ends the data nor loses its dot;
//   - at the start of a line a "." is dropped; ".\r\n" ends the data;
//     after ".\r" a byte other than LF is kept and the "." and CR are
//     dropped (as net/textproto's DotReader does);
//   - a CR that follows a CR is ordinary data, so "\r\r\n" does not end a
//     line;
//   - at most the message size limit of output bytes are returned, then
//     go-smtp's ErrDataTooLarge, checked before anything else in a Read;
//   - the end of the input before the end of data is io.ErrUnexpectedEOF;
//     other errors of the underlying reader (such as go-smtp's line
//     length limit, which sits below the bufio.Reader) pass through,
//     after the bytes read so far;
//   - no byte past the final CRLF is consumed: the next command stays in
//     the bufio.Reader; and the underlying reader is only asked for more
//     when the buffer is empty and more output is wanted, as ReadByte
//     does.
package dotreader

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-smtp"
)

// States of the end-of-data machine (RFC 5321 section 4.5.2).
const (
	beginLine = iota // at the start of a line (after CRLF)
	dot              // after a "." that starts a line
	dotCR            // after "." CR at the start of a line
	cr               // after a CR
	data             // inside a line
	eof              // after the final "." CRLF
)

// Reader reads the content of one DATA transfer from a bufio.Reader.
type Reader struct {
	r     *bufio.Reader
	state int

	limited bool
	n       int64 // output bytes still allowed
}

// New returns a Reader of the transfer that follows in r. maxBytes > 0
// bounds the output, as go-smtp's Server.MaxMessageBytes does.
func New(r *bufio.Reader, maxBytes int64) *Reader {
	return &Reader{r: r, limited: maxBytes > 0, n: maxBytes}
}

// Read implements io.Reader.
func (r *Reader) Read(b []byte) (n int, err error) {
	if r.limited {
		if r.n <= 0 {
			return 0, smtp.ErrDataTooLarge
		}
		if int64(len(b)) > r.n {
			b = b[:r.n]
		}
	}
	for n < len(b) && r.state != eof {
		if r.r.Buffered() == 0 {
			// Fill the buffer as ReadByte would: only when it is empty.
			if _, err = r.r.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				break
			}
		}
		buf, _ := r.r.Peek(r.r.Buffered())
		used := 0
		for used < len(buf) && n < len(b) && r.state != eof {
			if r.state == data {
				// Inside a line every byte but CR is copied as it is.
				run := buf[used:min(len(buf), used+len(b)-n)]
				k := bytes.IndexByte(run, '\r')
				if k < 0 {
					k = len(run)
				}
				n += copy(b[n:], run[:k])
				used += k
				if k == len(run) {
					continue
				}
			}
			c := buf[used]
			used++
			if r.step(c) {
				b[n] = c
				n++
			}
		}
		r.r.Discard(used)
	}
	if err == nil && r.state == eof {
		err = io.EOF
	}
	if r.limited {
		r.n -= int64(n)
	}
	return n, err
}

// Drain reads and discards the rest of the transfer, past the size limit
// as go-smtp does before its final reply, and returns nil at the end of
// data or the error that stopped it.
func (r *Reader) Drain() error {
	r.limited = false
	var buf [512]byte
	for {
		_, err := r.Read(buf[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Done reports whether the final "." CRLF has been read.
func (r *Reader) Done() bool { return r.state == eof }

// step moves the machine over c and reports whether c is content.
func (r *Reader) step(c byte) bool {
	switch r.state {
	case beginLine:
		switch c {
		case '.':
			r.state = dot
			return false
		case '\r':
			r.state = cr
		default:
			r.state = data
		}
	case dot:
		if c == '\r' {
			r.state = dotCR
			return false
		}
		r.state = data
	case dotCR:
		if c == '\n' {
			r.state = eof
			return false
		}
		r.state = data
	case cr:
		if c == '\n' {
			r.state = beginLine
		} else {
			r.state = data
		}
	case data:
		if c == '\r' {
			r.state = cr
		}
	}
	return true
}
