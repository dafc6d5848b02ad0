package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/outguard/outguard/internal/header"
)

// Message is the content received at DATA, exactly as the client sent it
// (dot-unstuffed, line endings as sent). Small messages stay in memory;
// past the spool threshold, or when the memory budget of all messages in
// memory is spent, the content lives in a temporary file that Close
// removes. The session closes every Message it creates.
//
// The readers a Message hands out may outlive the transaction: a scanner
// past its timeout, or net/http still sending a request body, keeps
// reading after the session has answered and closed the Message. Such a
// late read fails with ErrMessageClosed; it never sees the storage after
// it went back to the pool for another message.
type Message struct {
	// Header is the raw header block, up to and including the empty line
	// that ends it (or the whole message when it has no body).
	Header []byte
	// Size is the total size in bytes.
	Size int64

	// mu is held shared by every read of mem and exclusively by Close,
	// so the pooled storage is recycled only once no read is in progress
	// and no later read can reach it.
	mu     sync.RWMutex
	closed bool
	mem    []byte   // whole message, when not spooled
	file   *os.File // spool file, when spooled
	// buf is the storage behind mem, taken from the budget and returned
	// to it (and to its pool) by Close.
	buf    []byte
	budget *MemoryBudget
}

// ErrMessageClosed is returned by reads of a Message's readers after the
// Message was closed.
var ErrMessageClosed = errors.New("smtpd: message closed")

// MemoryBudget bounds the memory that the messages held in memory take
// together, counted by the capacity of their buffers. A message whose
// buffer cannot grow within the budget goes on to the spool file, as one
// past the spool threshold does. See docs/config-smtp.md
// (limits.message_memory_bytes).
type MemoryBudget struct {
	max     int64
	used    atomic.Int64
	peak    atomic.Int64
	metrics *Metrics
}

// NewMemoryBudget returns a budget of max bytes.
func NewMemoryBudget(max int64) *MemoryBudget { return &MemoryBudget{max: max} }

// take reserves n bytes, or reports false when they are not left.
func (b *MemoryBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for {
				p := b.peak.Load()
				if u+n <= p || b.peak.CompareAndSwap(p, u+n) {
					break
				}
			}
			b.metrics.messageMemory(u + n)
			return true
		}
	}
}

// give returns n bytes taken earlier.
func (b *MemoryBudget) give(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.metrics.messageMemory(b.used.Add(-n))
}

func (b *MemoryBudget) metricsOrNil() *Metrics {
	if b == nil {
		return nil
	}
	return b.metrics
}

// Used is the memory the messages in memory hold now.
func (b *MemoryBudget) Used() int64 { return b.used.Load() }

// Peak is the most memory the messages in memory held at any one time.
func (b *MemoryBudget) Peak() int64 { return b.peak.Load() }

// bufClasses are the sizes of the pooled message buffers: a message grows
// through them (copying once per class), so a small message holds a small
// buffer. Larger buffers are allocated to size and not pooled.
var bufClasses = [...]int{4 << 10, 16 << 10, 64 << 10, 256 << 10}

var bufPools [len(bufClasses)]sync.Pool

// getBuf returns an empty buffer of at least n bytes' capacity: the
// smallest pooled class that fits, or a new one of n bytes.
func getBuf(n int) []byte {
	for i, c := range bufClasses {
		if n <= c {
			if bp, ok := bufPools[i].Get().(*[]byte); ok {
				return (*bp)[:0]
			}
			return make([]byte, 0, c)
		}
	}
	return make([]byte, 0, n)
}

// putBuf gives b back to its class's pool; other sizes are dropped.
func putBuf(b []byte) {
	for i, c := range bufClasses {
		if cap(b) == c {
			b = b[:0]
			bufPools[i].Put(&b)
			return
		}
	}
}

// growCap is the capacity a message buffer of capacity have grows to when
// it must hold need bytes, at most limit (limit >= need): the next pooled
// class, then doubling.
func growCap(have, need, limit int) int {
	for _, c := range bufClasses {
		if need <= c && c > have {
			return min(c, max(limit, need))
		}
	}
	return min(max(need, 2*have), limit)
}

// copyBufs are the 32 KiB read buffers of readMessage.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// NewMessage returns a Message holding raw, for tests and for the paths
// (release, classify) that start from bytes.
func NewMessage(raw []byte) *Message {
	m := &Message{mem: raw, Size: int64(len(raw))}
	m.Header = raw[:headerEnd(raw)]
	return m
}

// Reader returns a reader of the whole raw message. Each call starts at
// the beginning; readers may be used concurrently.
func (m *Message) Reader() io.Reader {
	return io.NewSectionReader(m.ReaderAt(), 0, m.Size)
}

// ReaderAt gives random access to the raw message. Reads after Close fail
// (ErrMessageClosed, or os.ErrClosed for a spooled message).
func (m *Message) ReaderAt() io.ReaderAt {
	if m.file != nil {
		return m.file
	}
	return memReader{m}
}

// memReader reads an in-memory Message under its lock.
type memReader struct{ m *Message }

func (r memReader) ReadAt(p []byte, off int64) (int, error) {
	m := r.m
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrMessageClosed
	}
	if off < 0 {
		return 0, errors.New("smtpd: negative offset")
	}
	if off >= int64(len(m.mem)) {
		return 0, io.EOF
	}
	n := copy(p, m.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Body returns a reader of everything after the header block.
func (m *Message) Body() io.Reader {
	h := int64(len(m.Header))
	return io.NewSectionReader(m.ReaderAt(), h, m.Size-h)
}

// Bytes returns the whole message, reading it from the spool file when it
// was spooled. The slice of an in-memory message is its pooled storage:
// it is valid only until Close, so it must not be handed to anything that
// may outlive the transaction (use ReaderAt for that).
func (m *Message) Bytes() ([]byte, error) {
	if m.file == nil {
		m.mu.RLock()
		defer m.mu.RUnlock()
		if m.closed {
			return nil, ErrMessageClosed
		}
		return m.mem, nil
	}
	b := make([]byte, m.Size)
	_, err := m.file.ReadAt(b, 0)
	return b, err
}

// Spooled reports whether the content is in a temporary file.
func (m *Message) Spooled() bool { return m.file != nil }

// Close removes the spool file, if any, and releases the memory of an
// in-memory message: slices returned by Bytes must not be used after it,
// and reads through ReaderAt, Reader and Body fail from then on. Close
// waits for reads in progress to finish. Calling it again does nothing.
func (m *Message) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.releaseBuf()
	m.mem = nil
	if m.file == nil {
		return nil
	}
	name := m.file.Name()
	err := m.file.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	m.file = nil
	return err
}

// errHeaderLine and errHeaderBlock are the header checks' findings.
var (
	errHeaderLine = errors.New("header line over 998 octets")
	// errHeaderCR: a CR not followed by LF in the header. The next hop
	// sees it as a line break (bare CR is relayed as CRLF), so a field
	// after it would be read by the next hop but not by outguard's
	// identity rules and header stripping (RFC 5322 §2.2 allows CR only
	// in CRLF).
	errHeaderCR    = errors.New("bare CR in the header")
	errHeaderBlock = errors.New("header block too large")
	errDataLine    = errors.New("message line over the configured limit")
)

// readLimits bound what readMessage accepts.
type readLimits struct {
	maxHeaderBytes int
	// maxLineBytes, when above zero, is the longest line (without its
	// line ending) accepted anywhere in the message.
	maxLineBytes   int
	spoolThreshold int64
	spoolDir       string
	// budget, when set, bounds the memory of all messages in memory.
	budget *MemoryBudget
	// sizeHint is the size the client declared (MAIL SIZE=, RFC 1870),
	// or 0: the first buffer is made that large, saving the copies of
	// growing one.
	sizeHint int64
}

// releaseBuf gives the memory buffer back to its pool and the budget.
func (m *Message) releaseBuf() {
	if m.buf == nil {
		return
	}
	m.budget.give(int64(cap(m.buf)))
	putBuf(m.buf)
	m.buf = nil
}

// hold makes room for n more bytes in memory, growing the buffer within
// the spool threshold and the budget. It reports false when the message
// must go to the spool file instead.
func (m *Message) hold(n int, lim readLimits) bool {
	need := len(m.buf) + n
	if int64(need) > lim.spoolThreshold {
		lim.budget.metricsOrNil().spoolReason("size")
		return false
	}
	if need <= cap(m.buf) {
		return true
	}
	limit := int(min(lim.spoolThreshold, math.MaxInt32))
	want := need
	if m.buf == nil && lim.sizeHint > int64(need) && lim.sizeHint <= int64(limit) {
		want = int(lim.sizeHint)
	}
	c := growCap(cap(m.buf), want, limit)
	// The new buffer is taken on top of the old one: both are live while
	// the content is copied.
	if !lim.budget.take(int64(c)) {
		lim.budget.metricsOrNil().spoolReason("memory")
		return false
	}
	nb := getBuf(c)
	if cap(nb) != c {
		// The pooled class is what was asked for; anything else is a
		// new buffer of exactly c.
		nb = make([]byte, 0, c)
	}
	nb = append(nb, m.buf...)
	if m.buf != nil {
		m.budget.give(int64(cap(m.buf)))
		putBuf(m.buf)
	}
	m.buf = nb
	return true
}

// spool moves what is in memory to a new spool file and gives the memory
// back.
func (m *Message) spool(dir string) error {
	f, err := os.CreateTemp(dir, "outguard-spool-*")
	if err != nil {
		return fmt.Errorf("spooling message: %w", err)
	}
	m.file = f
	if _, err := f.Write(m.buf); err != nil {
		return fmt.Errorf("spooling message: %w", err)
	}
	m.releaseBuf()
	return nil
}

// readMessage reads r whole with bounded memory, checking the header block
// as it goes. On a header violation it still drains r (so the protocol
// stays in step) and returns the violation.
func readMessage(r io.Reader, lim readLimits) (*Message, error) {
	m := &Message{budget: lim.budget}
	hs := headerScanner{max: lim.maxHeaderBytes}
	ls := lineScanner{max: lim.maxLineBytes}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var violation error
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if violation == nil && !hs.done {
				violation = hs.scan(chunk)
			}
			if violation == nil && ls.max > 0 {
				violation = ls.scan(chunk)
			}
			if violation == nil {
				if m.file == nil && !m.hold(n, lim) {
					if serr := m.spool(lim.spoolDir); serr != nil {
						m.Close()
						return nil, serr
					}
				}
				if m.file != nil {
					if _, werr := m.file.Write(chunk); werr != nil {
						m.Close()
						return nil, fmt.Errorf("spooling message: %w", werr)
					}
				} else {
					m.buf = append(m.buf, chunk...)
				}
				m.Size += int64(n)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			m.Close()
			return nil, err
		}
	}
	if violation != nil {
		m.Close()
		return nil, violation
	}
	m.mem = m.buf
	end := hs.end
	if !hs.done {
		end = m.Size
	}
	m.Header = make([]byte, end)
	if _, err := m.ReaderAt().ReadAt(m.Header, 0); err != nil && err != io.EOF {
		m.Close()
		return nil, err
	}
	return m, nil
}

// headerScanner finds the end of the header block in a stream and checks
// line lengths and the block's size as chunks arrive.
type headerScanner struct {
	max     int
	n       int64 // bytes scanned
	lineLen int   // octets in the current line, without CR LF
	cr      bool  // the previous octet was CR
	done    bool
	end     int64 // offset just past the empty line
}

func (h *headerScanner) scan(b []byte) error {
	for _, c := range b {
		if h.done {
			return nil
		}
		h.n++
		if h.cr && c != '\n' {
			return errHeaderCR
		}
		h.cr = false
		switch c {
		case '\n':
			if h.lineLen == 0 {
				h.done = true
				h.end = h.n
				return nil
			}
			h.lineLen = 0
		case '\r':
			h.cr = true
		default:
			h.lineLen++
		}
		if h.lineLen > 998 {
			return errHeaderLine
		}
		if h.max > 0 && h.n > int64(h.max) {
			return errHeaderBlock
		}
	}
	return nil
}

// lineScanner checks the length of every line in a stream. CR and LF
// each end a line: a bare CR goes on to the next hop as a line break.
type lineScanner struct {
	max     int
	lineLen int
}

func (l *lineScanner) scan(b []byte) error {
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			l.lineLen += len(b)
			break
		}
		if l.lineLen+i > l.max {
			return errDataLine
		}
		l.lineLen = 0
		b = b[i+1:]
	}
	if l.lineLen > l.max {
		return errDataLine
	}
	return nil
}

// headerEnd returns the offset just past the empty line that ends the
// header block of raw, or len(raw) when there is none.
func headerEnd(raw []byte) int {
	var h headerScanner
	h.scan(raw)
	if h.done {
		return int(h.end)
	}
	return len(raw)
}

// rewriteHeader returns the header block with every field named in strip removed
// (with its continuation lines) and the lines of add prepended. What it
// removes is what the readers of header fields read: it uses the same
// scanner (internal/header).
func rewriteHeader(block []byte, add []string, strip []string) []byte {
	var out bytes.Buffer
	for _, l := range add {
		out.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			out.WriteString("\r\n")
		}
	}
	if len(strip) == 0 {
		out.Write(block)
		return out.Bytes()
	}
	return header.AppendRemove(out.Bytes(), block, strip...)
}
