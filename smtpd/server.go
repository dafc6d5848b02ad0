// Package smtpd is outguard's SMTP side: the listeners that sending MTAs
// relay through, and the next hop the mail goes on to.
//
// # Overview
//
// A Server accepts SMTP sessions on one or more listeners, authenticates
// outgoing users (SMTP AUTH PLAIN or LOGIN, or the client's network),
// and relays each transaction in lockstep with the next hop, as Postfix's
// before-queue proxy does: MAIL and every RCPT are forwarded as they
// arrive and the next hop's replies passed back; the message is read
// whole, the Policy decides its fate, and only then does the next hop see
// the content. The client gets 250 only after the next hop's 250.
//
// The Policy is the one per-transaction step where identity, locks,
// classification, the message log and the quarantine plug in. Begin runs
// at MAIL, Check.Data after DATA, and Check.Close exactly once with the
// final result.
//
// # Caveats
//
// smtpd has no queue: a message is never stored for later delivery, so a
// next hop that is down turns into 4xx replies to the clients, who retry.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/txid"
)

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	// Hostname is used in the greeting and the Received header.
	Hostname string
	// Auth resolves outgoing users. Required.
	Auth Authenticator
	// Policy decides each transaction's fate. Default: relay everything.
	Policy Policy
	// NextHop receives relayed mail. Required.
	NextHop NextHop
	// IsFeedbackAddress reports whether a recipient is outguard's own
	// feedback address, which listeners with Feedback set accept without
	// authentication (and whose mail the Policy consumes).
	IsFeedbackAddress func(addr string) bool

	MaxMessageBytes int64 // default 25 MiB
	// MaxRecipients bounds the RCPT attempts of one transaction, whatever
	// their outcome; later ones get 452 4.5.3 and are counted in
	// Transaction.RcptsOverLimit, not recorded. Default 100.
	MaxRecipients int
	// MaxRcptRefusals is how many refused RCPTs (by the Policy, the next
	// hop or the feedback listener; 452 replies excepted) a session may
	// collect; the next RCPT gets 421 4.7.0 and the connection closes.
	// Default 50.
	MaxRcptRefusals int
	// MaxLineLength bounds command lines (default 2000); message lines
	// are bounded by MaxMessageBytes, and by MaxDataLineLength when set.
	MaxLineLength int
	// MaxDataLineLength, when above zero, refuses messages with a longer
	// line (without its line ending) with 552 5.3.4. Default 0: no limit.
	MaxDataLineLength int
	MaxHeaderBytes    int           // default 256 KiB
	IdleTimeout       time.Duration // default 5m; time allowed per read in a transaction
	// IdleTimeoutBeforeMail is the time allowed per read outside a
	// transaction (before the first MAIL and between transactions), for
	// listeners that set none. Default 1m.
	IdleTimeoutBeforeMail time.Duration
	SessionTimeout        time.Duration // default 30m; whole connection
	// MaxConnections and MaxConnectionsPerIP are the connection limits of
	// listeners that set none; each listener counts its own connections.
	// Defaults 1000 and 100.
	MaxConnections      int
	MaxConnectionsPerIP int
	// IPv6PrefixLength is how much of an IPv6 client address the per-IP
	// limits and the AUTH throttle count by. Default 64.
	IPv6PrefixLength   int
	AuthFailuresMax    int           // default 5
	AuthFailuresWindow time.Duration // default 5m
	// AuthWait is how long an AUTH waits for its turn (attempts of the
	// same client in flight, or the Authenticator's budget) before 454
	// 4.7.0. Default 5s.
	AuthWait time.Duration
	// SpoolThreshold is the most of a message held in memory; the rest
	// goes to a temporary file in SpoolDir (default os.TempDir()).
	SpoolThreshold int64
	SpoolDir       string
	// MessageMemoryBytes bounds the memory that all messages held in
	// memory take together (their buffers' capacity); a message that
	// would pass it goes to the spool file. Default 256 MiB.
	MessageMemoryBytes int64

	// Logger receives one line per transaction; default slog.Default().
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now and NewID are test seams: the clock and the transaction id
	// generator (default: ULIDs).
	Now   func() time.Time
	NewID func(time.Time) string

	// goSMTPDataReader leaves every DATA transfer to go-smtp's own
	// reader (tests compare the two).
	goSMTPDataReader bool
	// noRcptAhead never sends recipients ahead to the next hop (see
	// trackedConn.noteAhead): the tests' reference.
	noRcptAhead bool
}

// ListenerOptions configure one listening socket.
type ListenerOptions struct {
	Name    string
	Address string
	// TLSConfig enables STARTTLS, or implicit TLS when Implicit is set.
	TLSConfig *tls.Config
	Implicit  bool
	// AllowInsecureAuth offers AUTH before TLS (loopback testing only).
	AllowInsecureAuth bool
	// Feedback accepts mail for the feedback address without AUTH.
	Feedback bool
	// MaxConnections, MaxConnectionsPerIP and IdleTimeoutBeforeMail are
	// this listener's own; zero takes the Server's Options.
	MaxConnections        int
	MaxConnectionsPerIP   int
	IdleTimeoutBeforeMail time.Duration
}

// Server is the SMTP side of outguard. Create it with New, add listeners
// with Listen, and stop it with Shutdown.
type Server struct {
	opts     Options
	log      *slog.Logger
	metrics  *Metrics
	throttle *authThrottle
	budget   *MemoryBudget
	// fastTransfers counts the DATA transfers the sessions read
	// themselves (fastdata.go).
	fastTransfers atomic.Int64
	// aheadTransactions counts the transactions whose MAIL went to the
	// next hop with recipients ahead (tests check that they did).
	aheadTransactions atomic.Int64

	mu       sync.Mutex
	servers  []*smtp.Server
	sessions map[*session]struct{}
	conns    map[*trackedConn]struct{} // every open connection, with or without a session
	draining bool
	wg       sync.WaitGroup
}

// New validates o and returns a Server with no listeners yet.
func New(o Options) (*Server, error) {
	if o.Auth == nil {
		return nil, errors.New("smtpd: Options.Auth is required")
	}
	if o.NextHop == nil {
		return nil, errors.New("smtpd: Options.NextHop is required")
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Policy == nil {
		o.Policy = RelayAll
	}
	if o.IsFeedbackAddress == nil {
		o.IsFeedbackAddress = func(string) bool { return false }
	}
	def64(&o.MaxMessageBytes, 25<<20)
	defInt(&o.MaxRecipients, 100)
	defInt(&o.MaxLineLength, 2000)
	defInt(&o.MaxHeaderBytes, 256<<10)
	defDur(&o.IdleTimeout, 5*time.Minute)
	defDur(&o.SessionTimeout, 30*time.Minute)
	defDur(&o.IdleTimeoutBeforeMail, time.Minute)
	defInt(&o.MaxRcptRefusals, 50)
	defInt(&o.MaxConnections, 1000)
	defInt(&o.MaxConnectionsPerIP, 100)
	defInt(&o.IPv6PrefixLength, 64)
	if o.IPv6PrefixLength < 1 || o.IPv6PrefixLength > 128 {
		return nil, fmt.Errorf("smtpd: Options.IPv6PrefixLength %d: use 1 to 128", o.IPv6PrefixLength)
	}
	defInt(&o.AuthFailuresMax, 5)
	defDur(&o.AuthFailuresWindow, 5*time.Minute)
	defDur(&o.AuthWait, 5*time.Second)
	def64(&o.SpoolThreshold, 1<<20)
	def64(&o.MessageMemoryBytes, DefaultMessageMemoryBytes)
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = txid.New
	}
	budget := NewMemoryBudget(o.MessageMemoryBytes)
	budget.metrics = o.Metrics
	return &Server{
		budget:   budget,
		opts:     o,
		log:      o.Logger,
		metrics:  o.Metrics,
		throttle: newAuthThrottle(o.AuthFailuresMax, o.AuthFailuresWindow, o.IPv6PrefixLength, o.Now),
		sessions: map[*session]struct{}{},
		conns:    map[*trackedConn]struct{}{},
	}, nil
}

// DefaultMessageMemoryBytes is Options.MessageMemoryBytes's default.
const DefaultMessageMemoryBytes = 256 << 20

// MessageMemory is the budget of the messages held in memory.
func (s *Server) MessageMemory() *MemoryBudget { return s.budget }

func defInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func def64(p *int64, v int64) {
	if *p == 0 {
		*p = v
	}
}

func defDur(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

// Listen opens a listener and serves it in the background. It returns the
// bound address (useful with port 0).
func (s *Server) Listen(lo ListenerOptions) (net.Addr, error) {
	l, err := net.Listen("tcp", lo.Address)
	if err != nil {
		return nil, fmt.Errorf("smtpd: listener %s: %w", lo.Name, err)
	}
	return s.Serve(l, lo)
}

// Serve serves an already open listener in the background.
func (s *Server) Serve(l net.Listener, lo ListenerOptions) (net.Addr, error) {
	defInt(&lo.MaxConnections, s.opts.MaxConnections)
	defInt(&lo.MaxConnectionsPerIP, s.opts.MaxConnectionsPerIP)
	defDur(&lo.IdleTimeoutBeforeMail, s.opts.IdleTimeoutBeforeMail)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		l.Close()
		return nil, errClosed
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return s.newSession(c, lo)
	}))
	srv.Domain = s.opts.Hostname
	srv.MaxMessageBytes = s.opts.MaxMessageBytes
	srv.MaxRecipients = s.opts.MaxRecipients
	// Command lines are bounded by trackedConn's lineGuard; go-smtp's
	// own limit would count message lines too.
	srv.MaxLineLength = 0
	srv.AllowInsecureAuth = lo.AllowInsecureAuth
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogErrorLog{s.log}
	// Deadlines are handled by trackedConn; go-smtp's per-line ones would
	// cut long DATA transfers.
	srv.ReadTimeout = 0
	srv.WriteTimeout = time.Minute
	var ln net.Listener = &limitListener{Listener: l, srv: s, opts: lo, implicitTLS: lo.TLSConfig != nil && lo.Implicit,
		limiter: newConnLimiter(lo.MaxConnections, lo.MaxConnectionsPerIP, s.opts.IPv6PrefixLength)}
	if lo.TLSConfig != nil {
		if lo.Implicit {
			ln = tls.NewListener(ln, lo.TLSConfig)
		} else {
			srv.TLSConfig = lo.TLSConfig
		}
	}
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("listener stopped", "listener", lo.Name, "err", err)
		}
	}()
	s.log.Info("listening", "listener", lo.Name, "address", l.Addr().String(), "tls", tlsMode(lo))
	return l.Addr(), nil
}

func tlsMode(lo ListenerOptions) string {
	switch {
	case lo.TLSConfig == nil:
		return "none"
	case lo.Implicit:
		return "implicit"
	}
	return "starttls"
}

// Shutdown stops accepting connections, closes idle sessions with 421,
// lets transactions in flight finish and closes their sessions after the
// final reply. When ctx ends first, the remaining connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	s.draining = true
	servers := s.servers
	s.mu.Unlock()

	// go-smtp's Shutdown closes the listeners at once and returns when
	// every connection has ended; it must not race with its Close.
	stopped := make(chan struct{}, len(servers))
	for _, srv := range servers {
		go func() {
			srv.Shutdown(context.Background())
			stopped <- struct{}{}
		}()
	}
	s.closeIdle()

	done := make(chan struct{})
	go func() {
		for {
			s.mu.Lock()
			n := len(s.sessions)
			s.mu.Unlock()
			if n == 0 {
				close(done)
				return
			}
			select {
			case <-ctx.Done():
				close(done)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	<-done
	s.mu.Lock()
	left := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		left = append(left, c)
	}
	s.mu.Unlock()
	for _, c := range left {
		c.Close()
	}
	for range servers {
		<-stopped
	}
	s.wg.Wait()
	if len(left) > 0 {
		return fmt.Errorf("smtpd: %d sessions still open at the shutdown deadline were closed: %w", len(left), ctx.Err())
	}
	return nil
}

// closeIdle ends the connections that are not inside a transaction
// (including those that have not said EHLO yet) with a 421.
func (s *Server) closeIdle() {
	s.mu.Lock()
	busy := map[*trackedConn]bool{}
	for ss := range s.sessions {
		if ss.inTransaction() {
			busy[ss.conn] = true
		}
	}
	var idle []*trackedConn
	for c := range s.conns {
		if !busy[c] {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	const bye = "421 4.3.2 Service shutting down, try again later\r\n"
	for _, c := range idle {
		// At idle nothing else writes. Under TLS (implicit or after
		// STARTTLS) the reply goes through the session's TLS connection,
		// which go-smtp set before the session was made (the atomic
		// session pointer orders the two).
		if !c.tls.Load() {
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte(bye))
		} else if ss := c.session.Load(); ss != nil {
			if tc, ok := ss.c.Conn().(*tls.Conn); ok {
				tc.SetWriteDeadline(time.Now().Add(time.Second))
				tc.Write([]byte(bye))
			}
		}
		c.Close()
	}
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.isDraining() }

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// slogErrorLog adapts go-smtp's error logger to slog.
type slogErrorLog struct{ l *slog.Logger }

func (e slogErrorLog) Printf(format string, v ...any) {
	e.l.Warn(fmt.Sprintf(format, v...), "component", "smtp")
}

func (e slogErrorLog) Println(v ...any) {
	e.l.Warn(fmt.Sprint(v...), "component", "smtp")
}
