package smtpd

// rcptLimit applies the recipient limits before an RCPT is looked at, in
// constant time: after MaxRecipients attempts of any outcome the
// transaction takes no more (452 4.5.3, counted, not recorded), and after
// MaxRcptRefusals refused RCPTs in the session the connection closes with
// 421 4.7.0, as Postfix's smtpd_hard_error_limit does. A nil result lets
// the RCPT go on.
func (s *session) rcptLimit(tx *Transaction) error {
	if s.rcptRefusals >= s.srv.opts.MaxRcptRefusals {
		if s.rcptRefusals == s.srv.opts.MaxRcptRefusals {
			s.log.Info("too many refused recipients, closing", "refused", s.rcptRefusals)
		}
		s.conn.closeAfterWrite()
		return s.reply("RCPT", replyRcptRefusals)
	}
	if len(tx.Rcpts) >= s.srv.opts.MaxRecipients {
		tx.RcptsOverLimit++
		return s.reply("RCPT", replyTooManyRcpts)
	}
	return nil
}

// countRefusal counts a refused RCPT toward MaxRcptRefusals. A 452 is
// not counted: it asks the client to send the recipient again in another
// transaction (a recipient limit, RFC 5321 §4.5.3.1.10), which a client
// that pipelines more recipients than the limit does in good faith.
func (s *session) countRefusal(r Recipient) {
	if r.Refused && r.Code != 452 {
		s.rcptRefusals++
	}
}
