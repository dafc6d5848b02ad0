package smtpd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/bdatsync"
	"github.com/outguard/outguard/internal/deadline"
	"github.com/outguard/outguard/internal/smtpclient"
)

// session is one SMTP connection. go-smtp calls its methods one at a
// time from the connection's goroutine, except Data during BDAT (RFC
// 3030), which go-smtp runs in a goroutine of its own while the
// connection goes on reading commands: a pipelined RSET, MAIL or RCPT can
// then arrive while Data still works on the transaction. The transaction
// therefore lives in a txState that Data takes over from the session
// (under mu) and locks while it works on it; Rcpt and Reset only touch a
// txState they hold the lock of, and never one that has ended.
type session struct {
	srv      *Server
	c        *smtp.Conn
	conn     *trackedConn
	listener ListenerOptions
	ip       netip.Addr
	client   netip.AddrPort

	// log, user and authName are used by the connection's goroutine
	// only; a transaction copies what it needs at MAIL.
	log      *slog.Logger
	user     *User
	authName string
	// rcptRefusals counts the session's refused RCPTs (see rcptLimit).
	rcptRefusals int

	mu  sync.Mutex
	cur *txState // the transaction between MAIL and DATA (or its end)
	// bdat is the BDAT transfer whose Data was started last.
	bdat bdatsync.Transfer

	// open counts transactions not yet ended: the current one, and one
	// whose BDAT transfer was reset but whose Data has not returned yet.
	open atomic.Int32
}

// txState is one transaction. Its fields are used under mu only.
type txState struct {
	mu    sync.Mutex
	ended bool
	tx    *Transaction
	check Check
	nh    NextHopTx
	log   *slog.Logger
	// mailFrom is the reverse path exactly as sent to the next hop.
	mailFrom string
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
	tc.session.Store(ss)
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

func (s *session) inTransaction() bool { return s.open.Load() > 0 }

// reply counts err's reply code for command and returns the reply to send.
// Every reply that outguard itself decides passes through here. It is
// for the connection's goroutine; Data uses replyLog.
func (s *session) reply(command string, err error) error {
	return s.replyLog(s.log, command, err)
}

func (s *session) replyLog(log *slog.Logger, command string, err error) error {
	if err == nil {
		s.srv.metrics.reply(command, 250)
		return nil
	}
	r := toReply(err, log)
	s.srv.metrics.reply(command, r.Code)
	return r
}

// current returns the open transaction, locked, or nil.
func (s *session) current() *txState {
	s.mu.Lock()
	st := s.cur
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return nil
	}
	return st
}

// take detaches the open transaction from the session and returns it
// locked, or nil. The caller ends it.
func (s *session) take() *txState {
	s.mu.Lock()
	st := s.cur
	s.cur = nil
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return nil
	}
	return st
}

func (s *session) tlsActive() bool {
	_, ok := s.c.TLSConnectionState()
	return ok
}

// Mail starts a transaction: it checks who may send, runs the Policy's
// Begin and opens the next-hop transaction with the same MAIL FROM.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	// The recipients the client pipelined after this MAIL, if any: they
	// go to the next hop with it (see trackedConn.noteAhead).
	ahead := s.conn.takeAhead(s.srv.opts.MaxRecipients)
	if s.srv.opts.noRcptAhead {
		ahead = nil
	}
	if s.srv.isDraining() {
		s.conn.closeAfterWrite()
		return s.reply("MAIL", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down, try again later"})
	}
	if s.conn.guard.hasTripped() {
		return s.reply("MAIL", replyLineTooLong)
	}
	// A transfer reset before its Data goroutine got going ("BDAT 0",
	// RSET) is only waited for here, before the next transfer can start.
	s.bdat.Wait()
	feedback := false
	if s.user == nil {
		if !s.listener.Feedback {
			return s.reply("MAIL", replyAuthRequired)
		}
		feedback = true
	}
	path, err := smtpclient.Path(from)
	if err != nil {
		s.log.Info("sender refused", "from", from, "err", err)
		return s.reply("MAIL", replyBadSender)
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
	ctx := deadline.New(s.srv.opts.IdleTimeout)
	defer ctx.Release()
	check, err := s.srv.opts.Policy.Begin(ctx, tx)
	if err != nil {
		s.log.Info("sender refused", "tx", tx.ID, "from", from, "err", err)
		return s.reply("MAIL", err)
	}
	st := &txState{tx: tx, check: check, log: s.log, mailFrom: path}
	if !feedback {
		opts := tx.Opts
		opts.Name = tx.ID
		opts.Ahead = ahead
		if len(ahead) > 0 {
			s.srv.aheadTransactions.Add(1)
		}
		nh, err := s.srv.opts.NextHop.Begin(ctx, from, opts)
		if err != nil {
			check.Close(tx, nil, Result{Err: err, Duration: time.Since(now)})
			return s.reply("MAIL", err)
		}
		st.nh = nh
	}
	s.open.Add(1)
	s.mu.Lock()
	s.cur = st
	s.mu.Unlock()
	return s.reply("MAIL", nil)
}

// Rcpt forwards one recipient to the next hop and passes its reply back.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.conn.guard.hasTripped() {
		return s.reply("RCPT", replyLineTooLong)
	}
	st := s.current()
	if st == nil {
		return s.reply("RCPT", replyNoTransaction)
	}
	defer st.mu.Unlock()
	tx := st.tx
	if r := s.rcptLimit(tx); r != nil {
		return r
	}
	if err := smtpclient.CheckAddress(to); err != nil {
		st.log.Info("recipient refused", "tx", tx.ID, "to", to, "err", err)
		r := s.reply("RCPT", replyBadRcpt)
		s.countRefusal(Recipient{Addr: to, Refused: true, Code: replyBadRcpt.Code})
		return r
	}
	var err error
	if rc, ok := st.check.(RcptChecker); ok {
		ctx := deadline.New(s.srv.opts.IdleTimeout)
		err = rc.Rcpt(ctx, tx, to)
		ctx.Release()
	}
	byNextHop := false
	switch {
	case err != nil:
		// Refused by the policy: the next hop never sees it.
	case tx.Feedback:
		if !s.srv.opts.IsFeedbackAddress(to) {
			err = replyAuthRequired
		}
	default:
		ctx := deadline.New(s.srv.opts.IdleTimeout)
		err = st.nh.Rcpt(ctx, to)
		ctx.Release()
		byNextHop = err != nil
	}
	r := s.reply("RCPT", err)
	rc := Recipient{Addr: to, Code: 250, Message: "OK"}
	var serr *smtp.SMTPError
	if errors.As(r, &serr) {
		rc.Refused, rc.Code, rc.Message, rc.Enhanced = true, serr.Code, serr.Message, serr.EnhancedCode
		rc.NextHop = byNextHop
	}
	tx.AddRcpt(rc)
	s.countRefusal(rc)
	return r
}

// Data reads the message, runs the decision step and relays or refuses.
// It takes the transaction over from the session first, so a command
// that go-smtp reads while a BDAT transfer runs finds no transaction to
// change.
func (s *session) Data(r io.Reader) error {
	pr, end := s.bdat.Begin(r) // pr is go-smtp's reader for BDAT
	defer end()
	chunked := pr != nil
	s.conn.guard.startTransfer(chunked)
	defer s.conn.guard.endTransfer(chunked)
	if !chunked {
		if fd := s.conn.fastData(s.c, s.srv.opts.MaxMessageBytes); fd != nil {
			defer fd.finish()
			r = fd
		}
	}
	// Whatever happens, the message is read to its end so that the reply
	// lands after it and the guard sees the transfer finish.
	defer io.Copy(io.Discard, r)
	if chunked {
		// go-smtp calls Data from a goroutine of its own and goes on
		// reading commands meanwhile. Until the first chunk's octets are
		// here (go-smtp's copy of them then waits for this goroutine) or
		// the transfer has ended, the open transaction is not safely
		// this transfer's: after "BDAT 0", a RSET and a new MAIL may
		// already have come. A transfer reset before it started was
		// ended by Reset.
		if _, err := pr.Read(nil); err != nil && err != io.EOF {
			return err
		}
	}
	st := s.take()
	if st == nil {
		return s.replyLog(s.srv.log, "DATA", replyNoTransaction)
	}
	defer st.mu.Unlock()
	defer s.endTransaction(st)
	tx := st.tx
	res := Result{}

	msg, err := readMessage(r, readLimits{
		maxHeaderBytes: s.srv.opts.MaxHeaderBytes,
		maxLineBytes:   s.srv.opts.MaxDataLineLength,
		spoolThreshold: s.srv.opts.SpoolThreshold,
		spoolDir:       s.srv.opts.SpoolDir,
		budget:         s.srv.budget,
		sizeHint:       tx.Opts.Size,
	})
	if errors.Is(err, smtp.ErrDataReset) {
		// The client reset the transaction (or left) during a BDAT
		// transfer: as after RSET before DATA, nothing was relayed and
		// nobody waits for a reply.
		if st.nh != nil {
			st.nh.Abort()
			st.nh = nil
		}
		st.check.Close(tx, nil, Result{Duration: s.srv.opts.Now().Sub(tx.Start), Err: err})
		st.log.Info("transaction reset during BDAT", "tx", tx.ID)
		return err
	}
	if err != nil {
		// Drain whatever the client still sends so the reply lands
		// after its end-of-data, then refuse.
		io.Copy(io.Discard, r)
		switch {
		case errors.Is(err, errHeaderLine):
			res.Reply = replyHeaderLine
			res.Outcome = OutcomeRejected
		case errors.Is(err, errHeaderCR):
			res.Reply = replyHeaderCR
			res.Outcome = OutcomeRejected
		case errors.Is(err, errHeaderBlock):
			res.Reply = replyHeaderTooLarge
			res.Outcome = OutcomeRejected
		case errors.Is(err, errDataLine):
			res.Reply = replyDataLine
			res.Outcome = OutcomeRejected
		case errors.Is(err, smtp.ErrDataTooLarge):
			res.Reply = replyTooLarge
			res.Outcome = OutcomeRejected
		default:
			res.Reply = toReply(err, st.log)
			res.Outcome = OutcomeDeferred
			res.Err = err
		}
		return s.finish(st, nil, res)
	}
	defer msg.Close()
	res.Size = msg.Size
	s.srv.metrics.messageSize(msg.Size)

	ctx := deadline.New(s.srv.opts.IdleTimeout)
	defer ctx.Release()
	dec, err := st.check.Data(ctx, tx, msg)
	res.Decision = dec
	if err != nil {
		res.Reply = withID(toReply(err, st.log), tx.ID)
		res.Outcome = OutcomeDeferred
		res.Err = err
		return s.finish(st, msg, res)
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
		return s.finish(st, msg, res)
	case Consume:
		res.Reply = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Feedback report received (id " + tx.ID + ")"}
		res.Outcome = OutcomeAccepted
		return s.finish(st, msg, res)
	}

	body := io.MultiReader(
		strings.NewReader(s.received(tx)),
		strings.NewReader(string(rewriteHeader(msg.Header, dec.AddHeaders, dec.StripHeaders))),
		msg.Body(),
	)
	dctx := deadline.New(s.srv.opts.IdleTimeout)
	text, err := st.nh.Data(dctx, body)
	dctx.Release()
	st.nh = nil
	if err != nil {
		res.Err = err
		res.Reply = toReply(err, st.log)
		res.NextHopReply, res.NextHopCode = res.Reply.Message, res.Reply.Code
		if res.Reply.Code/100 == 5 {
			res.Outcome = OutcomeFailed
		} else {
			res.Outcome = OutcomeDeferred
		}
		res.Reply = withID(res.Reply, tx.ID)
		return s.finish(st, msg, res)
	}
	res.NextHopReply, res.NextHopCode = text, 250
	res.Outcome = OutcomeAccepted
	res.Reply = &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: text + " (id " + tx.ID + ")"}
	if cm, ok := st.check.(Committer); ok {
		res.Duration = s.srv.opts.Now().Sub(tx.Start)
		cctx := deadline.New(s.srv.opts.IdleTimeout)
		err := cm.Commit(cctx, tx, msg, res)
		cctx.Release()
		if err != nil {
			// The next hop has the message, but it left no record: no
			// 250. The client's retry may deliver it twice, which the
			// free-space reserve and the refusals while the log cannot
			// be written keep to the transactions in flight when the
			// disk failed (docs/config-store.md).
			st.log.Error("relayed but not recorded; answering 451 (a retry may deliver the message twice)", "tx", tx.ID, "err", err)
			res.Err = err
			res.Outcome = OutcomeDeferred
			res.Reply = withID(replyNotRecorded, tx.ID)
		}
	}
	return s.finish(st, msg, res)
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
// reply. The reply code is set on every accepted recipient. The caller
// holds st.mu.
func (s *session) finish(st *txState, msg *Message, res Result) error {
	tx := st.tx
	res.Duration = s.srv.opts.Now().Sub(tx.Start)
	for i := range tx.Rcpts {
		if !tx.Rcpts[i].Refused {
			tx.Rcpts[i].Code, tx.Rcpts[i].Message = res.Reply.Code, res.Reply.Message
		}
	}
	if st.nh != nil {
		st.nh.Abort()
		st.nh = nil
	}
	st.check.Close(tx, msg, res)
	check := st.check
	st.check = nil
	s.srv.metrics.transaction(res.Outcome)
	s.srv.metrics.reply("DATA", res.Reply.Code)
	if !st.log.Enabled(context.Background(), slog.LevelInfo) {
		return res.Reply
	}
	accepted := tx.Accepted()
	// The paths exactly as the next hop got them (smtpclient.Path cannot fail
	// here: MAIL and RCPT refused what it cannot write).
	var rcptTo strings.Builder
	for i, a := range accepted {
		p, _ := smtpclient.Path(a)
		if i > 0 {
			rcptTo.WriteByte(',')
		}
		rcptTo.WriteString(p)
	}
	// The user and domain are already on s.log (set at AUTH or from the
	// client's network), as tx.User is s.user.
	var buf [20]slog.Attr
	attrs := append(buf[:0], slog.String("tx", tx.ID), slog.String("outcome", res.Outcome))
	if la, ok := check.(LogAttrser); ok {
		attrs = la.AppendLogAttrs(attrs)
	}
	attrs = append(attrs, slog.String("from", tx.From), slog.String("mail_from", st.mailFrom),
		slog.Int("rcpts", len(accepted)), slog.String("rcpt_to", rcptTo.String()),
		slog.Int64("size", res.Size), slog.String("reply", strconv.Itoa(res.Reply.Code)+" "+res.Reply.Message))
	if res.NextHopReply != "" {
		attrs = append(attrs, slog.String("next_hop_reply", strconv.Itoa(res.NextHopCode)+" "+res.NextHopReply))
	}
	attrs = append(attrs, slog.Duration("duration", res.Duration))
	if tx.RcptsOverLimit > 0 {
		attrs = append(attrs, slog.Int("rcpts_over_limit", tx.RcptsOverLimit))
	}
	if res.Err != nil {
		attrs = append(attrs, slog.Any("err", res.Err))
	}
	st.log.LogAttrs(context.Background(), slog.LevelInfo, "transaction", attrs...)
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
	b := make([]byte, 0, 256)
	b = append(b, "Received: from "...)
	b = append(b, sanitizeHelo(tx.Helo)...)
	b = append(b, " ("...)
	b = append(b, addressLiteral(tx.Client.Addr())...)
	b = append(b, ")\r\n\tby "...)
	b = append(b, s.srv.opts.Hostname...)
	b = append(b, " (outguard) with "...)
	b = append(b, proto...)
	b = append(b, " id "...)
	b = append(b, tx.ID...)
	if acc := tx.Accepted(); len(acc) == 1 {
		if p, err := smtpclient.Path(acc[0]); err == nil {
			b = append(b, "\r\n\tfor "...)
			b = append(b, p...)
		}
	}
	b = append(b, ";\r\n\t"...)
	b = s.srv.opts.Now().AppendFormat(b, time.RFC1123Z)
	b = append(b, "\r\n"...)
	return string(b)
}

// AddressLiteral writes ip as an RFC 5321 §4.1.3 address literal, as the
// Received field of relayed mail does.
func AddressLiteral(ip netip.Addr) string { return addressLiteral(ip) }

// addressLiteral writes ip as an RFC 5321 §4.1.3 address literal:
// "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
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

// endTransaction marks st ended (the caller holds st.mu); during a
// graceful shutdown it closes the connection after the final reply.
func (s *session) endTransaction(st *txState) {
	st.ended = true
	st.check, st.nh = nil, nil
	s.open.Add(-1)
	if s.srv.isDraining() {
		s.conn.closeAfterWrite()
	}
}

// Reset aborts a transaction that has not reached DATA. A transaction
// that Data has taken over is Data's to end: go-smtp has already failed
// its reader.
func (s *session) Reset() {
	s.bdat.Wait()
	st := s.take()
	if st == nil {
		return
	}
	defer st.mu.Unlock()
	if st.nh != nil {
		st.nh.Abort()
	}
	if st.check != nil {
		st.check.Close(st.tx, nil, Result{Duration: s.srv.opts.Now().Sub(st.tx.Start)})
	}
	s.endTransaction(st)
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
