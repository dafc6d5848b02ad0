package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// session is one SMTP connection. go-smtp calls its methods one at a time.
type session struct {
	srv      *Server
	c        *smtp.Conn
	conn     *trackedConn
	listener ListenerOptions
	ip       netip.Addr
	client   netip.AddrPort
	log      *slog.Logger

	user     *User
	authName string

	// The current transaction, between MAIL and its end.
	tx    *Transaction
	check Check
	nh    NextHopTx
	inTx  atomic.Bool
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (s *Server) newSession(c *smtp.Conn, lo ListenerOptions) (smtp.Session, error) {
	tc := unwrapTracked(c.Conn())
	if tc == nil {
		return nil, errors.New("smtpd: connection not accepted through a limitListener")
	}
	if _, ok := c.TLSConnectionState(); ok {
		tc.tls.Store(true)
	}
	client := addrOf(c.Conn().RemoteAddr())
	ss := &session{
		srv:      s,
		c:        c,
		conn:     tc,
		listener: lo,
		ip:       client.Addr(),
		client:   client,
		log:      s.log.With("listener", lo.Name, "client", client.String()),
	}
	// A network user is known from the start; SMTP AUTH may still name
	// another user.
	if u, ok := s.opts.Auth.UserForAddress(ss.ip); ok {
		ss.user = u
		ss.log = ss.log.With("user", u.Name, "domain", u.Domain)
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
	}
	_, existed := s.sessions[ss]
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	if !existed {
		s.metrics.sessionStart(lo.Name)
	}
	return ss, nil
}

func (s *session) inTransaction() bool { return s.inTx.Load() }

// reply counts err's reply code for command and returns the reply to send.
// Every reply that outguard itself decides passes through here.
func (s *session) reply(command string, err error) error {
	if err == nil {
		s.srv.metrics.reply(command, 250)
		return nil
	}
	r := toReply(err, s.log)
	s.srv.metrics.reply(command, r.Code)
	return r
}

func (s *session) tlsActive() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

// Mail starts a transaction: it checks who may send, runs the Policy's
// Begin and opens the next-hop transaction with the same MAIL FROM.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.srv.isDraining() {
		s.conn.closeAfterWrite()
		return s.reply("MAIL", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"})
	}
	feedback := false
	if s.user == nil {
		if !s.listener.Feedback {
			return s.reply("MAIL", replyAuthRequired)
		}
		feedback = true
	}
	now := s.srv.opts.Now()
	tx := &Transaction{
		ID:       s.srv.opts.NewID(now),
		Listener: s.listener.Name,
		Start:    now,
		Client:   s.client,
		Helo:     s.c.Hostname(),
		TLS:      s.tlsActive(),
		User:     s.user,
		AuthName: s.authName,
		Feedback: feedback,
		From:     from,
	}
	if opts != nil {
		tx.Opts = MailOptions{Body8Bit: opts.Body == smtp.Body8BitMIME, UTF8: opts.UTF8, Size: opts.Size}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
	defer cancel()
	check, err := s.srv.opts.Policy.Begin(ctx, tx)
	if err != nil {
		s.log.Info("sender refused", "tx", tx.ID, "from", from, "err", err)
		return s.reply("MAIL", err)
	}
	if !feedback {
		nh, err := s.srv.opts.NextHop.Begin(ctx, from, tx.Opts)
		if err != nil {
			check.Close(tx, nil, Result{Err: err, Duration: time.Since(now)})
			return s.reply("MAIL", err)
		}
		s.nh = nh
	}
	s.tx, s.check = tx, check
	s.inTx.Store(true)
	return s.reply("MAIL", nil)
}

// Rcpt forwards one recipient to the next hop and passes its reply back.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.tx == nil {
		return s.reply("RCPT", replyNoTransaction)
	}
	if len(s.tx.Accepted()) >= s.srv.opts.MaxRecipients {
		s.tx.Rcpts = append(s.tx.Rcpts, Recipient{Addr: to, Refused: true, Code: replyTooManyRcpts.Code, Message: replyTooManyRcpts.Message})
		return s.reply("RCPT", replyTooManyRcpts)
	}
	var err error
	if rc, ok := s.check.(RcptChecker); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
		err = rc.Rcpt(ctx, s.tx, to)
		cancel()
	}
	switch {
	case err != nil:
		// Refused by the policy: the next hop never sees it.
	case s.tx.Feedback:
		if !s.srv.opts.IsFeedbackAddress(to) {
			err = replyAuthRequired
		}
	default:
		ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
		err = s.nh.Rcpt(ctx, to)
		cancel()
	}
	r := s.reply("RCPT", err)
	rc := Recipient{Addr: to, Code: 250, Message: "OK"}
	var serr *smtp.SMTPError
	if errors.As(r, &serr) {
		rc.Refused, rc.Code, rc.Message = true, serr.Code, serr.Message
	}
	s.tx.Rcpts = append(s.tx.Rcpts, rc)
	return r
}

// Data reads the message, runs the decision step and relays or refuses.
func (s *session) Data(r io.Reader) error {
	if s.tx == nil {
		return s.reply("DATA", replyNoTransaction)
	}
	tx := s.tx
	res := Result{}
	defer s.endTransaction()

	msg, err := readMessage(r, readLimits{
		maxHeaderBytes: s.srv.opts.MaxHeaderBytes,
		spoolThreshold: s.srv.opts.SpoolThreshold,
		spoolDir:       s.srv.opts.SpoolDir,
	})
	if err != nil {
		// Drain whatever the client still sends so the reply lands
		// after its end-of-data, then refuse.
		io.Copy(io.Discard, r)
		switch {
		case errors.Is(err, errHeaderLine):
			res.Reply = replyHeaderLine
			res.Outcome = OutcomeRejected
		case errors.Is(err, errHeaderBlock):
			res.Reply = replyHeaderTooLarge
			res.Outcome = OutcomeRejected
		case errors.Is(err, smtp.ErrDataTooLarge):
			res.Reply = replyTooLarge
			res.Outcome = OutcomeRejected
		default:
			res.Reply = toReply(err, s.log)
			res.Outcome = OutcomeDeferred
			res.Err = err
		}
		return s.finish(tx, nil, res)
	}
	defer msg.Close()
	res.Size = msg.Size
	s.srv.metrics.messageSize(msg.Size)

	ctx, cancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
	defer cancel()
	dec, err := s.check.Data(ctx, tx, msg)
	res.Decision = dec
	if err != nil {
		res.Reply = withID(toReply(err, s.log), tx.ID)
		res.Outcome = OutcomeDeferred
		res.Err = err
		return s.finish(tx, msg, res)
	}
	switch dec.Action {
	case Refuse:
		res.Reply = dec.Reply
		if res.Reply == nil {
			res.Reply = withID(replyInternal, tx.ID)
		}
		res.Outcome = dec.Outcome
		if res.Outcome == "" {
			res.Outcome = OutcomeRejected
			if res.Reply.Code/100 == 4 {
				res.Outcome = OutcomeDeferred
			}
		}
		return s.finish(tx, msg, res)
	case Consume:
		res.Reply = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Feedback report received (id " + tx.ID + ")"}
		res.Outcome = OutcomeAccepted
		return s.finish(tx, msg, res)
	}

	body := io.MultiReader(
		strings.NewReader(s.received(tx)),
		strings.NewReader(string(rewriteHeader(msg.Header, dec.AddHeaders, dec.StripHeaders))),
		msg.Body(),
	)
	dctx, dcancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
	text, err := s.nh.Data(dctx, body)
	dcancel()
	s.nh = nil
	if err != nil {
		res.Err = err
		res.Reply = toReply(err, s.log)
		res.NextHopReply = res.Reply.Message
		if res.Reply.Code/100 == 5 {
			res.Outcome = OutcomeFailed
		} else {
			res.Outcome = OutcomeDeferred
		}
		res.Reply = withID(res.Reply, tx.ID)
		return s.finish(tx, msg, res)
	}
	res.NextHopReply = text
	res.Outcome = OutcomeAccepted
	res.Reply = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: text + " (id " + tx.ID + ")"}
	if cm, ok := s.check.(Committer); ok {
		res.Duration = s.srv.opts.Now().Sub(tx.Start)
		cctx, ccancel := context.WithTimeout(context.Background(), s.srv.opts.IdleTimeout)
		err := cm.Commit(cctx, tx, msg, res)
		ccancel()
		if err != nil {
			// The next hop has the message, but it left no record: no
			// 250. The client's retry may deliver it twice, which the
			// free-space reserve and the refusals while the log cannot
			// be written keep to the transactions in flight when the
			// disk failed (docs/config-store.md).
			s.log.Error("relayed but not recorded; answering 451 (a retry may deliver the message twice)", "tx", tx.ID, "err", err)
			res.Err = err
			res.Outcome = OutcomeDeferred
			res.Reply = withID(replyNotRecorded, tx.ID)
		}
	}
	return s.finish(tx, msg, res)
}

// withID appends the transaction id to a reply that lacks it.
func withID(r *smtp.SMTPError, id string) *smtp.SMTPError {
	if strings.Contains(r.Message, id) {
		return r
	}
	c := *r
	c.Message = r.Message + " (id " + id + ")"
	return &c
}

// finish records the outcome with the Check, logs it and returns the
// reply. The reply code is set on every accepted recipient.
func (s *session) finish(tx *Transaction, msg *Message, res Result) error {
	res.Duration = s.srv.opts.Now().Sub(tx.Start)
	for i := range tx.Rcpts {
		if !tx.Rcpts[i].Refused {
			tx.Rcpts[i].Code, tx.Rcpts[i].Message = res.Reply.Code, res.Reply.Message
		}
	}
	if s.nh != nil {
		s.nh.Abort()
		s.nh = nil
	}
	s.check.Close(tx, msg, res)
	s.check = nil
	s.srv.metrics.transaction(res.Outcome)
	s.srv.metrics.reply("DATA", res.Reply.Code)
	attrs := []any{"tx", tx.ID, "outcome", res.Outcome, "from", tx.From, "rcpts", len(tx.Accepted()),
		"size", res.Size, "reply", fmt.Sprintf("%d %s", res.Reply.Code, res.Reply.Message), "duration", res.Duration}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err)
	}
	s.log.Info("transaction", attrs...)
	return res.Reply
}

// received builds the Received header prepended to relayed mail.
func (s *session) received(tx *Transaction) string {
	proto := "ESMTP"
	if tx.TLS {
		proto += "S"
	}
	if tx.AuthName != "" {
		proto += "A"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (outguard) with %s id %s", sanitizeHelo(tx.Helo), tx.Client.Addr(), s.srv.opts.Hostname, proto, tx.ID)
	if acc := tx.Accepted(); len(acc) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", acc[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", s.srv.opts.Now().Format(time.RFC1123Z))
	return b.String()
}

func sanitizeHelo(h string) string {
	if h == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' || r == '(' || r == ')' || r == ';' {
			return '_'
		}
		return r
	}, h)
}

// endTransaction clears the transaction state after DATA; during a
// graceful shutdown it closes the connection after the final reply.
func (s *session) endTransaction() {
	s.tx, s.check, s.nh = nil, nil, nil
	s.inTx.Store(false)
	if s.srv.isDraining() {
		s.conn.closeAfterWrite()
	}
}

// Reset aborts a transaction that has not reached its end.
func (s *session) Reset() {
	if s.tx == nil {
		return
	}
	if s.nh != nil {
		s.nh.Abort()
		s.nh = nil
	}
	if s.check != nil {
		s.check.Close(s.tx, nil, Result{Duration: s.srv.opts.Now().Sub(s.tx.Start)})
	}
	s.endTransaction()
}

// Logout ends the session.
func (s *session) Logout() error {
	s.Reset()
	s.srv.mu.Lock()
	_, ok := s.srv.sessions[s]
	delete(s.srv.sessions, s)
	s.srv.mu.Unlock()
	if ok {
		s.srv.metrics.sessionEnd(s.listener.Name)
	}
	return nil
}
