package smtpd

import (
	"bufio"
	"io"
	"net"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/dotreader"
)

// The DATA reader (docs/architecture.md, "The DATA reader").
//
// go-smtp reads a DATA transfer one octet at a time through its
// end-of-data state machine, which costs more CPU than the rest of a
// relayed message's input. Where go-smtp reads the connection directly
// (no TLS above it), the session reads the transfer itself, in bulk,
// with internal/dotreader (the same state machine, checked against
// go-smtp's by its fuzz target), and go-smtp's reader then finds an
// empty transfer: trackedConn hands it "." CRLF, followed by whatever the
// client sent after its end of data.
//
// This is only sound when go-smtp's buffer holds nothing of the message
// when Data is called: trackedConn ends every hand-out with the first
// DATA command line in it (handOut), so that go-smtp's buffer is empty
// after it has read the DATA line it is answering. A client that sent
// its message before the 354 (or pipelined anything after DATA) finds it
// read from trackedConn's buffer instead of go-smtp's, in the same order.

// fastReaders are the buffered readers of fast transfers.
var fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readAhead) }}

// fastData is the reader of one fast DATA transfer.
type fastData struct {
	t   *trackedConn
	br  *bufio.Reader
	dr  *dotreader.Reader
	err error // the connection's read error: the transfer is over
}

// fastData returns a reader of the DATA transfer go-smtp has just
// started on c, or nil when go-smtp's own reader must read it: under
// TLS, or when go-smtp may hold octets of the message. The caller calls
// finish once it has read what it wants.
func (t *trackedConn) fastData(c *smtp.Conn, maxBytes int64) *fastData {
	if !t.atData || len(t.inject) > 0 || t.tls.Load() || c.Conn() != net.Conn(t) || t.srv.opts.goSMTPDataReader {
		return nil
	}
	t.atData = false
	t.raw = true
	t.srv.fastTransfers.Add(1)
	br := fastReaders.Get().(*bufio.Reader)
	br.Reset(t)
	return &fastData{t: t, br: br, dr: dotreader.New(br, maxBytes)}
}

// Read reads the message. Once the connection has failed (the client
// left, or went quiet past the idle timeout) every later read returns
// that error at once: draining a transfer that cannot go on would only
// wait the timeout again.
func (f *fastData) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.dr.Read(p)
	if err != nil && err != io.EOF && err != smtp.ErrDataTooLarge {
		f.err = err
	}
	return n, err
}

// finish reads the rest of the transfer (past the size limit, as go-smtp
// does before its final reply) and hands go-smtp's reader an empty
// transfer and what the client sent after the end of data. A transfer
// that broke (the client left, timed out) leaves its error for every
// later read, go-smtp's included.
func (f *fastData) finish() {
	t := f.t
	err := f.err
	if err == nil {
		err = f.dr.Drain()
	}
	t.raw = false
	switch {
	case err == io.ErrUnexpectedEOF:
		// The client closed the connection: go-smtp's reader finds
		// the same end (and turns it into the same error).
		t.failed = io.EOF
	case err != nil:
		t.failed = err
	default:
		rest, _ := f.br.Peek(f.br.Buffered())
		t.injectBuf = append(append(t.injectBuf[:0], ".\r\n"...), rest...)
		t.inject = t.injectBuf
	}
	f.br.Reset(nil)
	fastReaders.Put(f.br)
}
