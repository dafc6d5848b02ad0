package filter

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// ClamdName is the name of the clamd engine in reasons and metrics.
const ClamdName = "clamd"

// Defaults of ClamdOptions.
const (
	DefaultClamdMaxStream = 25 << 20
	DefaultClamdChunk     = 64 << 10
)

// maxClamdReply bounds the reply line read from clamd.
const maxClamdReply = 4096

// OverLimit says what happens to a message larger than clamd accepts.
type OverLimit int

const (
	// OverLimitSkip leaves the message unscanned by clamd (noted in the
	// reasons as "clamd:SKIPPED_TOO_LARGE(0)" and as a gap of kind
	// GapFile, limit LimitClamdStream, for the unscannable policy).
	OverLimitSkip OverLimit = iota
	// OverLimitTempfail defers the message with ErrTempfail, whatever the
	// engine's OnError says.
	OverLimitTempfail
)

// ParseOverLimit parses "skip" or "tempfail".
func ParseOverLimit(s string) (OverLimit, error) {
	switch s {
	case "skip", "":
		return OverLimitSkip, nil
	case "tempfail":
		return OverLimitTempfail, nil
	}
	return OverLimitSkip, fmt.Errorf("unknown over_limit %q: use skip or tempfail", s)
}

// ClamdOptions configure the clamd engine.
type ClamdOptions struct {
	// Address is "tcp:HOST:PORT" or "unix:/path/to/clamd.ctl". Required.
	Address string
	// MaxStreamBytes should equal clamd's StreamMaxLength; larger messages
	// are handled by OverLimit without being sent. Zero means
	// DefaultClamdMaxStream.
	MaxStreamBytes int64
	// OverLimit says what happens to larger messages.
	OverLimit OverLimit
	// ChunkSize is the INSTREAM chunk length. Zero means DefaultClamdChunk.
	ChunkSize int
	// Dial opens connections; nil means a net.Dialer. A test seam.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Clamd scans messages with ClamAV's clamd over INSTREAM, one connection
// per scan. It is safe for concurrent use.
//
// A fresh connection per scan, rather than a pool of IDSESSION
// connections, keeps failures apart: clamd closes a connection after a
// size-limit or protocol error, and in a session one such error ends every
// scan multiplexed on it, while replies must be matched to requests by id.
// A loopback or unix-socket connect costs tens of microseconds against the
// milliseconds of a scan, and clamd bounds its own concurrency
// (MaxThreads, MaxConnectionQueueLength) either way.
type Clamd struct {
	network, addr string
	opts          ClamdOptions
}

var (
	_ Engine = (*Clamd)(nil)
	_ Pinger = (*Clamd)(nil)
)

// ErrClamdSizeLimit is wrapped by errors caused by clamd refusing a stream
// as too long.
var ErrClamdSizeLimit = errors.New("clamd: INSTREAM size limit exceeded")

// errReadMessage marks a failure to read the message being streamed, as
// opposed to a failure to send it.
var errReadMessage = errors.New("reading message")

// NewClamd checks opts and returns the engine. It does not connect.
func NewClamd(opts ClamdOptions) (*Clamd, error) {
	network, addr, err := ParseClamdAddress(opts.Address)
	if err != nil {
		return nil, err
	}
	if opts.MaxStreamBytes <= 0 {
		opts.MaxStreamBytes = DefaultClamdMaxStream
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultClamdChunk
	}
	if opts.Dial == nil {
		var d net.Dialer
		opts.Dial = d.DialContext
	}
	return &Clamd{network: network, addr: addr, opts: opts}, nil
}

// ParseClamdAddress splits "tcp:HOST:PORT" or "unix:PATH" into a network
// and an address for net.Dial.
func ParseClamdAddress(s string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(s, "tcp:"):
		addr = strings.TrimPrefix(s, "tcp:")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", fmt.Errorf("filter: clamd address %q: use tcp:HOST:PORT, e.g. tcp:127.0.0.1:3310", s)
		}
		return "tcp", addr, nil
	case strings.HasPrefix(s, "unix:"):
		addr = strings.TrimPrefix(s, "unix:")
		if addr == "" {
			return "", "", fmt.Errorf("filter: clamd address %q: use unix:/path/to/clamd.ctl", s)
		}
		return "unix", addr, nil
	}
	return "", "", fmt.Errorf("filter: clamd address %q: use tcp:HOST:PORT or unix:/path", s)
}

// Name returns "clamd".
func (c *Clamd) Name() string { return ClamdName }

// dial connects and ties the connection's deadline to ctx, so that a
// silent clamd cannot hold a scan past its timeout.
func (c *Clamd) dial(ctx context.Context) (net.Conn, func(), error) {
	conn, err := c.opts.Dial(ctx, c.network, c.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { stop(); conn.Close() }, nil
}

// Scan streams the raw message to clamd.
func (c *Clamd) Scan(ctx context.Context, m *Message) (Verdict, error) {
	if m.Size() > c.opts.MaxStreamBytes {
		return c.overLimit(m.Size())
	}
	conn, done, err := c.dial(ctx)
	if err != nil {
		return Verdict{}, err
	}
	defer done()
	werr := c.stream(conn, m.Raw())
	if errors.Is(werr, errReadMessage) {
		// The message could not be read: clamd waits for the rest of a
		// stream that will not come, so give up at once.
		return Verdict{}, fmt.Errorf("%w: %w", ErrUnavailable, werr)
	}
	// clamd may answer and close early (size limit); read its reply even
	// after a failed write.
	reply, rerr := readClamdReply(conn)
	if ctx.Err() != nil {
		return Verdict{}, ctx.Err()
	}
	if rerr != nil {
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			// The connection's deadline is the context's; it may fire a
			// moment before the context reports it.
			return Verdict{}, fmt.Errorf("%w: waiting for clamd: %w", ErrTimeout, rerr)
		}
		if werr != nil {
			return Verdict{}, fmt.Errorf("%w: sending to clamd: %w", ErrUnavailable, werr)
		}
		return Verdict{}, fmt.Errorf("%w: reading clamd reply: %w", ErrUnavailable, rerr)
	}
	v, err := parseClamdReply(reply)
	if errors.Is(err, ErrClamdSizeLimit) {
		return c.overLimit(m.Size())
	}
	return v, err
}

func (c *Clamd) overLimit(size int64) (Verdict, error) {
	if c.opts.OverLimit == OverLimitTempfail {
		return Verdict{}, fmt.Errorf("%w: message of %d bytes is over clamd's stream limit (%d)", ErrTempfail, size, c.opts.MaxStreamBytes)
	}
	return Verdict{Reasons: []string{Reason(ClamdName, "SKIPPED_TOO_LARGE", 0)},
		Gaps: []Gap{{Limit: LimitClamdStream, Kind: GapFile}}}, nil
}

func (c *Clamd) stream(conn net.Conn, r io.Reader) error {
	bw := bufio.NewWriterSize(conn, c.opts.ChunkSize+4)
	if _, err := bw.WriteString("zINSTREAM\x00"); err != nil {
		return err
	}
	buf := make([]byte, c.opts.ChunkSize)
	var hdr [4]byte
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			binary.BigEndian.PutUint32(hdr[:], uint32(n))
			bw.Write(hdr[:])
			if _, werr := bw.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", errReadMessage, err)
		}
	}
	bw.Write([]byte{0, 0, 0, 0})
	return bw.Flush()
}

// readClamdReply reads one NUL- or newline-terminated reply, without
// waiting for clamd to close the connection.
func readClamdReply(conn net.Conn) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(conn, maxClamdReply), 256)
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if len(b) > 0 && err == io.EOF {
				return string(b), nil // closed without terminator
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if c == 0 || c == '\n' {
			return string(b), nil
		}
		b = append(b, c)
	}
}

// parseClamdReply maps "stream: OK", "stream: NAME FOUND" and "... ERROR"
// replies.
func parseClamdReply(reply string) (Verdict, error) {
	reply = strings.TrimSpace(reply)
	body := reply
	if i := strings.Index(body, ": "); i >= 0 {
		body = body[i+2:]
	}
	switch {
	case body == "OK":
		return Verdict{}, nil
	case strings.HasSuffix(body, " FOUND"):
		name := strings.TrimSpace(strings.TrimSuffix(body, " FOUND"))
		if name == "" {
			name = "UNKNOWN"
		}
		// With AlertExceedsMax or AlertEncrypted, clamd names what it
		// could not look into as if it were a signature: that is content
		// left unscanned, for the unscannable policy, not a virus (an
		// innocent password-protected archive must not count as one).
		switch {
		case strings.HasPrefix(name, "Heuristics.Limits.Exceeded"):
			return Verdict{Reasons: []string{Reason(ClamdName, name, 0)}, Gaps: []Gap{{Limit: LimitClamdLimits, Kind: GapExecutable}}}, nil
		case strings.HasPrefix(name, "Heuristics.Encrypted."):
			return Verdict{Reasons: []string{Reason(ClamdName, name, 0)}, Gaps: []Gap{{Limit: LimitArchiveEncrypted, Kind: GapExecutable}}}, nil
		}
		return Verdict{Class: Virus, Score: 100, Reasons: []string{Reason(ClamdName, name, 100)}}, nil
	case strings.Contains(reply, "size limit exceeded"):
		return Verdict{}, fmt.Errorf("%w: %s", ErrClamdSizeLimit, reply)
	}
	return Verdict{}, fmt.Errorf("%w: clamd replied %q", ErrUnavailable, reply)
}

// Ping sends PING and expects PONG.
func (c *Clamd) Ping(ctx context.Context) error {
	conn, done, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r, err := readClamdReply(conn)
	if err != nil || r != "PONG" {
		return fmt.Errorf("%w: clamd PING answered %q (%v)", ErrUnavailable, r, err)
	}
	return nil
}
