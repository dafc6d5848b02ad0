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
// does (docs/config-smtp.md, limits.max_line_length).
//
// The guard sits on the network connection, under TLS when TLS runs, so
// it counts the octets as they arrive; it checks before each read, so a
// command line passes the limit by at most one read before the session
// ends with go-smtp's "500 5.4.0 Too long line".
//
// While a BDAT transfer runs, go-smtp reads the commands between chunks
// too; there the bound is one whole message plus one command line, since
// every chunk is answered.
type lineGuard struct {
	max      int64 // most octets read without a reply, outside transfers
	chunkMax int64 // the same during a BDAT transfer

	mu           sync.Mutex
	unanswered   int64
	transfers    int // Data calls running
	chunked      int // of which BDAT transfers
	ended        int // Data calls returned whose final reply is not written yet
	endedChunked int
	tripped      bool
}

func newLineGuard(o Options) *lineGuard {
	return &lineGuard{max: int64(o.MaxLineLength), chunkMax: o.MaxMessageBytes + int64(o.MaxLineLength)}
}

// beforeRead reports ErrTooLongLine once a command line has passed the
// limit; the connection is then unusable, as with go-smtp's own limit.
func (g *lineGuard) beforeRead() error {
	if g == nil || g.max <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.transfers == 0 && g.unanswered > g.max,
		g.chunked > 0 && g.unanswered > g.chunkMax:
		g.tripped = true
	}
	if g.tripped {
		return smtp.ErrTooLongLine
	}
	return nil
}

func (g *lineGuard) read(n int) {
	if g == nil || n <= 0 {
		return
	}
	g.mu.Lock()
	g.unanswered += int64(n)
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
