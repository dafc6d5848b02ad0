package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/outguard/outguard/internal/header"
)

// Message is the content received at DATA, exactly as the client sent it
// (dot-unstuffed, line endings as sent). Small messages stay in memory;
// past the spool threshold the content lives in a temporary file that
// Close removes. The session closes every Message it creates.
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
	mem    []byte        // whole message, when not spooled
	file   *os.File      // spool file, when spooled
	buf    *bytes.Buffer // pooled storage behind mem, returned by Close
}

// ErrMessageClosed is returned by reads of a Message's readers after the
// Message was closed.
var ErrMessageClosed = errors.New("smtpd: message closed")

// memBufs recycles the in-memory storage of messages: most messages are
// small, and growing a fresh buffer for each was a visible share of the
// relay's allocations.
var memBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// copyBufs are the 32 KiB read buffers of readMessage.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// maxPooledBuf is the largest buffer kept for reuse.
const maxPooledBuf = 256 << 10

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
	if m.buf != nil {
		if m.buf.Cap() <= maxPooledBuf {
			m.buf.Reset()
			memBufs.Put(m.buf)
		}
		m.buf, m.mem = nil, nil
	}
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
}

// readMessage reads r whole with bounded memory, checking the header block
// as it goes. On a header violation it still drains r (so the protocol
// stays in step) and returns the violation.
func readMessage(r io.Reader, lim readLimits) (*Message, error) {
	m := &Message{}
	hs := headerScanner{max: lim.maxHeaderBytes}
	ls := lineScanner{max: lim.maxLineBytes}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	mem := memBufs.Get().(*bytes.Buffer)
	m.buf = mem
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
				if m.file == nil && int64(mem.Len()+n) > lim.spoolThreshold {
					f, ferr := os.CreateTemp(lim.spoolDir, "outguard-spool-*")
					if ferr != nil {
						m.Close()
						return nil, fmt.Errorf("spooling message: %w", ferr)
					}
					m.file = f
					if _, werr := f.Write(mem.Bytes()); werr != nil {
						m.Close()
						return nil, fmt.Errorf("spooling message: %w", werr)
					}
					mem.Reset()
				}
				if m.file != nil {
					if _, werr := m.file.Write(chunk); werr != nil {
						m.Close()
						return nil, fmt.Errorf("spooling message: %w", werr)
					}
				} else {
					mem.Write(chunk)
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
	m.mem = mem.Bytes()
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
