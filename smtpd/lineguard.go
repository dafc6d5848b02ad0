package smtpd

import (
	"sync"

	"github.com/emersion/go-smtp"
)

// lineGuard bounds command lines while leaving message lines free.
//
// go-smtp's own limit (smtp.Server.MaxLineLength) sits under its buffered
// reader and counts every octet it reads, message content included: the
// first body line over the limit fails the read and drops the connection,
// so a message with one long HTML line got 451 and was retried for days.
// go-smtp lifts its limit only while it copies a BDAT chunk. outguard
// turns go-smtp's limit off and bounds instead what a client sends
// without getting a reply, outside a message transfer: every command
// gets a reply, so between two replies a well-behaved client sends at
// most one command line (plus whatever it pipelined behind it, which
// go-smtp answers before it reads more). Message content, read while Data
// runs, is bounded by the message size limit instead, as Postfix's smtpd
// does (docs/config-smtp-protocol.md).
//
// The guard sits on the network connection, under TLS when TLS runs. Out
// of a transfer it hands go-smtp at most one octet past the limit per
// read and refuses the next read once the limit is passed, so a command
// line longer than the limit ends the session with go-smtp's "500 5.4.0
// Too long line". Input that starts with a TLS record (a handshake, or
// commands under TLS) gets one TLS record's worth more, since a record
// is read whole before any of it can be answered.
//
// A read refused with ErrTooLongLine leaves go-smtp's buffer holding the
// start of the long line, which go-smtp then takes for a whole command
// before it finds the error; the session's own commands (MAIL, RCPT,
// AUTH) therefore check tripped and do nothing once the guard has fired.
//
// While a BDAT transfer runs, go-smtp reads the commands between chunks
// too; there the bound is one whole message plus one command line, since
// every chunk is answered.
type lineGuard struct {
	max      int64 // most octets read without a reply, outside transfers
	chunkMax int64 // the same during a BDAT transfer

	mu           sync.Mutex
	unanswered   int64
	tlsInput     bool // the unanswered input starts with a TLS record
	transfers    int  // Data calls running
	chunked      int  // of which BDAT transfers
	ended        int  // Data calls returned whose final reply is not written yet
	endedChunked int
	tripped      bool
}

// tlsRecordAllowance is the largest TLS record on the wire: 2^14 octets
// of plaintext, 256 of expansion and a 5-octet header (RFC 8446 §5.2).
const tlsRecordAllowance = 1<<14 + 256 + 5

func newLineGuard(o Options) *lineGuard {
	return &lineGuard{max: int64(o.MaxLineLength), chunkMax: o.MaxMessageBytes + int64(o.MaxLineLength)}
}

// beforeRead returns how many octets the next read may take (at most
// n), or ErrTooLongLine once a command line has passed the limit; the
// connection is then unusable, as with go-smtp's own limit.
func (g *lineGuard) beforeRead(n int) (int, error) {
	if g == nil || g.max <= 0 {
		return n, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := int64(-1)
	switch {
	case g.transfers == 0:
		limit = g.max
		if g.tlsInput {
			limit += tlsRecordAllowance
		}
	case g.chunked > 0:
		limit = g.chunkMax
	}
	if limit >= 0 && g.unanswered > limit {
		g.tripped = true
	}
	if g.tripped {
		return 0, smtp.ErrTooLongLine
	}
	if limit >= 0 && g.transfers == 0 {
		// Past the limit by one octet at most, so that the next read
		// finds out.
		if room := limit + 1 - g.unanswered; int64(n) > room {
			n = int(room)
		}
	}
	return n, nil
}

// hasTripped reports whether a command line has passed the limit.
func (g *lineGuard) hasTripped() bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tripped
}

func (g *lineGuard) read(b []byte) {
	if g == nil || len(b) == 0 {
		return
	}
	g.mu.Lock()
	if g.unanswered == 0 {
		// TLS record content types are 20 to 23 (RFC 8446 §5.1); no
		// SMTP command starts with such an octet.
		g.tlsInput = b[0] >= 20 && b[0] <= 23
	}
	g.unanswered += int64(len(b))
	g.mu.Unlock()
}

// replied records a write to the client. A transfer that has ended stops
// exempting reads once its final reply (after go-smtp has read the rest
// of the message) is written.
func (g *lineGuard) replied() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.unanswered = 0
	g.transfers -= g.ended
	g.chunked -= g.endedChunked
	g.ended, g.endedChunked = 0, 0
	g.mu.Unlock()
}

// startTransfer and endTransfer bracket a Data call. During BDAT go-smtp
// copies the first chunk into a pipe that Data reads: the copy cannot go
// past its first read until Data has started, so the exemption is in
// place before any read beyond the command that started the chunk.
func (g *lineGuard) startTransfer(chunked bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.transfers++
	if chunked {
		g.chunked++
	}
	g.mu.Unlock()
}

func (g *lineGuard) endTransfer(chunked bool) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.ended++
	if chunked {
		g.endedChunked++
	}
	g.mu.Unlock()
}
