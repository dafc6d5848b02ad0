package app

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/emersion/go-message/textproto"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/smtpd"
)

// readHeader parses the header block at the start of raw.
func readHeader(raw []byte) (textproto.Header, error) {
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
}

// report builds the ARF report of a message about to be quarantined,
// staged for the outbox: the quarantine writes it in the same transaction
// as the message. It returns nil, nil for a user without any abuse
// address and for mail that must never be reported (reports, bounces,
// mail to the feedback address), which are logged.
func (p *pipeline) report(tx *smtpd.Transaction, c *check, raw []byte) (*arf.Staged, error) {
	gen := p.generator.Load()
	if p.outbox == nil || gen == nil {
		return nil, nil
	}
	if arf.FeedbackType(c.verdict.Class.String()) == "" {
		// Refused as unscannable, not as abuse: nothing for an abuse desk.
		p.log.Info("no ARF report: refused as unscannable, not classified as abuse", "tx", tx.ID)
		return nil, nil
	}
	to := c.up.abuseAddress
	if to == "" {
		p.log.Info("no ARF report: no abuse address configured for the user, its domain or globally", "tx", tx.ID)
		return nil, nil
	}
	h, err := readHeader(raw)
	if err != nil {
		h = textproto.Header{}
	}
	if why := arf.SkipReason(tx.From, tx.Accepted(), &h, c.st.feedbackAddrs); why != "" {
		p.log.Info("no ARF report", "tx", tx.ID, "why", why)
		return nil, nil
	}
	rep, err := gen.Generate(arf.Incident{
		TxID: tx.ID, User: tx.User.Name, Domain: tx.User.Domain, Identity: c.identity,
		Verdict: c.verdict.Class.String(), Score: c.verdict.Score, Reasons: c.verdict.Reasons,
		MailFrom: tx.From, RcptTo: tx.Accepted(), Arrival: tx.Start,
		SourceIP: tx.Client.Addr(), SourcePort: int(tx.Client.Port()),
		Original: raw, To: []string{to},
	})
	if err != nil {
		return nil, fmt.Errorf("building ARF report for %s: %w", tx.ID, err)
	}
	st, err := p.outbox.Stage(arf.Report{ID: tx.ID, To: []string{to}, Raw: rep})
	if err != nil {
		return nil, fmt.Errorf("staging ARF report for %s: %w", tx.ID, err)
	}
	return st, nil
}
