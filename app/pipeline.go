package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/baseline"
	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/deadline"
	"github.com/outguard/outguard/internal/header"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// pipeline is outguard's smtpd.Policy: the one per-transaction step where
// locks, identity, classification, automatic locking, the message log, the
// quarantine and ARF reports come together.
//
// At MAIL it refuses locked outgoing users. After DATA it finds the
// identity, refuses a locked identity, classifies the message, and for a
// blocked verdict stores the message in the quarantine and its ARF report
// in the outbox (in one synced transaction) before the client hears 550.
// A verdict counts toward automatic locking once the message's fate is
// final, never for a reply the client will retry (4xx). Every transaction
// that reached DATA ends in one message-log record: the record of relayed
// mail is on disk before the client hears 250 (Commit), the others are
// written by Close.
type pipeline struct {
	log        *slog.Logger
	ids        *identity.Manager
	store      *quarantine.Store
	classifier atomic.Pointer[filter.Classifier]
	// slots bound the messages classified at once; a reload that changes
	// filter.limits.max_concurrent swaps them (the messages holding the
	// old ones finish with them).
	slots     atomic.Pointer[classifySlots]
	outbox    *arf.Outbox
	generator atomic.Pointer[arf.Generator]
	feedback  *feedback.Intake
	state     atomic.Pointer[policyState]
	now       func() time.Time
	// learner is the content model operators teach; nil when disabled.
	learner *content.Learner
	// detect runs the behaviour signals (baseline, campaigns).
	detect *detection
	// learnRefusals teaches the content model spam from messages the next
	// hop refused after DATA as 5.7.x.
	learnRefusals bool
	// disk keeps the free-space reserve; nil skips the storage checks.
	disk *dataDisk

	// noLog skips the message-log write of relayed mail; set only by the
	// benchmark that measures what logging costs.
	noLog bool
}

var (
	_ smtpd.Policy     = (*pipeline)(nil)
	_ smtpd.Committer  = (*check)(nil)
	_ smtpd.LogAttrser = (*check)(nil)
)

func (p *pipeline) Begin(ctx context.Context, tx *smtpd.Transaction) (smtpd.Check, error) {
	if r := p.storage(); r != nil {
		return nil, r
	}
	if tx.Feedback {
		return &feedbackCheck{in: p.feedback}, nil
	}
	st := p.state.Load()
	up := st.user(tx.User.Name)
	if _, locked := p.ids.CheckUser(tx.User.Domain, tx.User.Name); locked {
		// No message-log record follows a refusal at MAIL: the id goes
		// in only where the template places {txid} (the daemon's log
		// line of the refusal carries it).
		return nil, up.replies.refusal(config.ReplyLockedUser, 550, smtp.EnhancedCode{5, 7, 1}, "OG-LOCKED", tx.ID, false, nil)
	}
	return &check{p: p, st: st, up: up}, nil
}

// check carries what one transaction's Data step learned to its Close.
type check struct {
	p  *pipeline
	st *policyState
	up *userPolicy

	identity   string
	verdict    filter.Verdict
	classified bool
	campaign   string // the message's campaign id
	// campaignLock is the campaign's user signal, acted on when the
	// message is counted.
	campaignLock *campaign.Signal
	trace        string
	header       headerSummary
	// identitySource names the rule that found identity; identityReason
	// says why a value found was not taken (for the message log).
	identitySource, identityReason string
	stored                         bool // Quarantine or Commit already wrote the record
	counted                        bool // the verdict was counted toward automatic locking
}

// headerSummary is what the log keeps of the message header.
type headerSummary struct {
	from, subject, messageID string
}

func summarize(raw []byte) headerSummary {
	var s headerSummary
	from, subject, msgid := topFields(raw)
	if from != "" {
		if a, err := mail.ParseAddress(from); err == nil {
			s.from = a.Address
		} else {
			s.from = from
		}
	}
	if subject != "" {
		if d, err := wordDecoder.DecodeHeader(subject); err == nil {
			subject = d
		}
		s.subject = subject
	}
	s.messageID = strings.Trim(msgid, "<> \t")
	return s
}

// wordDecoder decodes RFC 2047 words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// topFields returns the unfolded values of the topmost From, Subject and
// Message-ID fields of a raw header block: the three the log keeps. It is
// a light scan, not a full header parse, because it runs for every
// message.
func topFields(raw []byte) (from, subject, msgid string) {
	var seen [3]bool
	out := [3]*string{&from, &subject, &msgid}
	s := header.NewScanner(raw)
	for s.Next() && !(seen[0] && seen[1] && seen[2]) {
		f := s.Field()
		i := -1
		switch {
		case f.Is("From"):
			i = 0
		case f.Is("Subject"):
			i = 1
		case f.Is("Message-ID"):
			i = 2
		}
		if i < 0 || seen[i] {
			continue
		}
		seen[i] = true
		// Each line trimmed, joined with one space.
		lines := f.Lines()
		v := strings.TrimSpace(string(lines[0][f.Colon()+1:]))
		for _, l := range lines[1:] {
			v += " " + strings.TrimSpace(string(l))
		}
		*out[i] = v
	}
	return from, subject, msgid
}

func refusal(code int, ec smtp.EnhancedCode, text, id string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: text + " (id " + id + ")"}
}

// tag is the verdict word of the refusal replies (docs/replies.md).
func tag(c filter.Class) string {
	switch c {
	case filter.Spam:
		return "OG-SPAM"
	case filter.Phishing:
		return "OG-PHISH"
	case filter.Virus:
		return "OG-VIRUS"
	}
	return "OG-CLEAN"
}

// Rcpt applies the user's own recipient limit.
func (c *check) Rcpt(ctx context.Context, tx *smtpd.Transaction, to string) error {
	if n := c.up.maxRecipients; n > 0 && tx.NumAccepted() >= n {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: fmt.Sprintf("Too many recipients: at most %d per message for this sender", n)}
	}
	return nil
}

// lockedIdentity says whether the identity found is locked or, when the
// identity header was ambiguous, whether either end's copy names a locked
// identity: the sending MTA's copy is at one end of the header block, so
// a second copy written by the locked end user does not lift the lock.
func (c *check) lockedIdentity(domain string, ext identity.Result) bool {
	if c.identity != "" {
		_, locked := c.p.ids.CheckIdentity(domain, c.identity)
		return locked
	}
	for _, v := range ext.Candidates {
		if _, locked := c.p.ids.CheckIdentity(domain, v); locked {
			return true
		}
	}
	return false
}

func (c *check) Data(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message) (smtpd.Decision, error) {
	p, up := c.p, c.up
	if n := up.maxMessageBytes; n > 0 && msg.Size > n {
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
			Reply: refusal(552, smtp.EnhancedCode{5, 3, 4}, fmt.Sprintf("Message too large: at most %d bytes for this sender", n), tx.ID)}, nil
	}
	c.header = summarize(msg.Header)
	ext := up.rules.Extract(identity.Input{Header: msg.Header, AuthUser: tx.AuthName, EnvelopeSender: tx.From})
	c.identity, c.identitySource, c.identityReason = ext.Identity, ext.Source, ext.Reason()
	switch {
	case ext.Ambiguous:
		// Two different values of a header read with occurrence: only:
		// someone wrote the identity header besides the sending MTA
		// (docs/identity-recipes.md).
		p.log.Warn("identity header ambiguous, no identity", "tx", tx.ID, "user", tx.User.Name, "reason", c.identityReason)
	case len(ext.Refused) > 0:
		p.log.Info("identity value refused", "tx", tx.ID, "refused", fmt.Sprint(ext.Refused))
	}
	monitor := up.policy.Monitor
	if c.identity == "" && up.requireIdentity && !monitor {
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
			Reply: up.replies.refusal(config.ReplyNoIdentity, 550, smtp.EnhancedCode{5, 7, 1}, "OG-NOIDENTITY", tx.ID, true, nil)}, nil
	}
	if c.identity != "" || len(ext.Candidates) > 0 {
		if c.lockedIdentity(tx.User.Domain, ext) {
			return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
				Reply: up.replies.refusal(config.ReplyLockedIdentity, 550, smtp.EnhancedCode{5, 7, 1}, "OG-LOCKED", tx.ID, true, nil)}, nil
		}
	}

	v, fm, err := c.classify(ctx, tx, msg)
	if err != nil {
		return smtpd.Decision{}, err
	}
	act, reply := c.unscannable(tx, v)
	if act == filter.ActTempfail {
		// Deferred: nothing is counted or remembered of it.
		c.verdict, c.classified = v, true
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeDeferred, Reply: reply}, nil
	}
	j := p.detect.judgeCampaign(tx.User.Name, c.identity, tx.ID, tx.Accepted(), fm, v)
	c.campaign, c.campaignLock = j.Campaign, j.Lock
	if j.Block != nil && v.Class == filter.Clean {
		// A near-duplicate of a confirmed campaign, from any identity.
		v.Class = filter.Spam
		v.Band = filter.BandSpam
		v.Reasons = append(v.Reasons, "campaign:CONFIRMED("+j.Block.Campaign+")")
		p.log.Info("message matches a confirmed campaign", "tx", tx.ID, "reason", j.Block.Reason)
	}
	c.verdict, c.classified = v, true
	if j.Report != nil {
		p.log.Info("campaign signal", "tx", tx.ID, "signal", j.Report.Kind.String(), "reason", j.Report.Reason)
	}

	if v.Class != filter.Clean && !monitor {
		act, reply = filter.ActBlock, up.replies.refusal(config.ReplyBlocked, 550, smtp.EnhancedCode{5, 7, 1},
			tag(v.Class), tx.ID, true, map[string]string{"class": v.Class.String()})
	}
	if act == filter.ActBlock {
		if err := c.quarantine(ctx, tx, msg, reply); err != nil {
			// Not stored means not refused for good: the client retries,
			// and nothing of this attempt was kept or counted.
			if errors.Is(err, quarantine.ErrDegraded) {
				// PostgreSQL is out of reach: the message cannot be kept
				// for release nor reported (docs/config-store.md).
				p.log.Warn("cannot quarantine while the message store is out of reach; deferred", "tx", tx.ID, "err", err)
				if p.disk != nil {
					p.disk.refusals.WithLabelValues("quarantine_unavailable").Inc()
				}
				return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeDeferred,
					Reply: refusal(replyNoQuarantine.Code, replyNoQuarantine.EnhancedCode, replyNoQuarantine.Message, tx.ID)}, nil
			}
			return smtpd.Decision{}, err
		}
		c.count(ctx, tx)
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeQuarantined, Reply: reply}, nil
	}

	if r := p.storage(); r != nil {
		// The disk filled or failed since MAIL: no relaying without a
		// record.
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeDeferred,
			Reply: refusal(r.Code, r.EnhancedCode, r.Message, tx.ID)}, nil
	}
	dec := smtpd.Decision{Action: smtpd.Relay}
	if up.stripIdentity {
		dec.StripHeaders = up.rules.HeaderNames()
	}
	if c.st.traceHeader != "" {
		c.trace = identity.TraceToken(c.st.traceKey, tx.ID)
		dec.StripHeaders = append(dec.StripHeaders, c.st.traceHeader)
		dec.AddHeaders = append(dec.AddHeaders, c.st.traceHeader+": "+c.trace)
	}
	return dec, nil
}

// classify runs the engines; a failed engine with on_error tempfail comes
// back as smtpd.ErrTempfail (451 4.7.1).
func (c *check) classify(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message) (filter.Verdict, *filter.Message, error) {
	cl := c.p.classifier.Load()
	if cl == nil {
		return filter.Verdict{Class: filter.Clean}, nil, nil
	}
	if slots := c.p.slots.Load(); slots != nil {
		if err := slots.acquire(ctx); err != nil {
			return filter.Verdict{}, nil, err
		}
		defer slots.release()
	}
	fm, err := filter.ParseMessage(msg.ReaderAt(), msg.Size, cl.Limits())
	if err != nil {
		return filter.Verdict{}, nil, fmt.Errorf("%w: parsing message: %v", smtpd.ErrTempfail, err)
	}
	fm.Envelope = filter.Envelope{
		MailFrom: tx.From, Rcpts: tx.Accepted(), ClientIP: tx.Client.Addr(), Helo: tx.Helo,
		User: tx.User.Name, Domain: tx.User.Domain, Identity: c.identity, TransactionID: tx.ID,
		AllowedSenderDomains: c.up.allowedSenderDomains,
		Thresholds:           c.up.thresholds,
	}
	v, err := cl.Classify(ctx, fm)
	if err != nil {
		if errors.Is(err, filter.ErrTempfail) {
			return v, nil, fmt.Errorf("%w: %v", smtpd.ErrTempfail, err)
		}
		return v, nil, err
	}
	return v, fm, nil
}

// refusedAfterData counts a message the next hop refused permanently
// after DATA against its identity (every recipient it had accepted, in
// the class of the refusal), and with learn_from_refusals teaches the
// content model a 5.7.x refusal as spam.
func (c *check) refusedAfterData(tx *smtpd.Transaction, msg *smtpd.Message, res smtpd.Result) {
	p := c.p
	if res.Reply == nil || res.Reply.Code/100 != 5 {
		return
	}
	subject := res.Reply.EnhancedCode[1]
	if c.identity != "" {
		n := tx.NumAccepted()
		r := identity.Refusals{AfterData: true, AfterDataRecipients: n}
		r.Add(subject, n)
		out, err := p.ids.Observe(context.Background(), identity.Observation{
			Domain: tx.User.Domain, User: tx.User.Name, Identity: c.identity, TxID: tx.ID, Refused: r,
		}, c.up.policy)
		switch {
		case err != nil:
			p.log.Error("counting a refusal after DATA failed", "tx", tx.ID, "err", err)
		case out.Locked != nil:
			p.log.Warn("identity locked automatically", "tx", tx.ID, "domain", tx.User.Domain, "identity", c.identity, "reason", out.Locked.Reason)
		case out.WouldLock != nil:
			p.log.Warn("identity would have been locked (monitor mode)", "tx", tx.ID, "domain", tx.User.Domain, "identity", c.identity)
		}
	}
	if !p.learnRefusals || subject != 7 || p.learner == nil || msg == nil {
		return
	}
	raw, err := msg.Bytes()
	if err != nil {
		return
	}
	m, err := filter.ParseBytes(raw, filter.DefaultLimits())
	if err != nil {
		return
	}
	before, after, err := filter.LearnMessage(p.learner, m, true)
	if err != nil {
		p.log.Warn("learning from a refusal after DATA failed", "tx", tx.ID, "err", err)
		return
	}
	p.log.Info("content model learnt a message the next hop refused as spam", "tx", tx.ID, "reply", res.Reply.Message, "before", before, "after", after)
}

// nextHopRefusals counts the recipients the next hop refused permanently
// at RCPT, by class, and the recipients it was asked for.
func nextHopRefusals(tx *smtpd.Transaction) (identity.Refusals, int) {
	var r identity.Refusals
	tried := 0
	for _, rc := range tx.Rcpts {
		switch {
		case !rc.Refused:
			tried++
		case rc.NextHop:
			tried++
			if rc.Code/100 == 5 {
				r.Add(rc.Enhanced[1], 1)
			}
		}
	}
	return r, tried
}

// count counts the verdict toward automatic locking, once per message:
// the callers run it when the message's fate is final (quarantined,
// relayed and recorded, refused for good), never for a 4xx the client
// retries.
func (c *check) count(ctx context.Context, tx *smtpd.Transaction) {
	p := c.p
	if c.counted || !c.classified || c.identity == "" {
		return
	}
	c.counted = true
	v := c.verdict
	if c.campaignLock != nil {
		p.lockCampaign(ctx, c.campaignLock, tx.User.Name, tx.User.Domain, c.identity, tx.ID)
	}
	base := p.detect.observeBaseline(lastObservation{Domain: tx.User.Domain, Identity: c.identity, User: tx.User.Name, TxID: tx.ID, Policy: c.up.policy}, tx.Accepted())
	if base.Level >= baseline.Suspect {
		// Said once an hour, when the departure begins (Escalated); the
		// identity's later messages that hour only at debug level.
		if lvl := slog.LevelDebug; p.log.Enabled(ctx, lvl) || base.Escalated {
			if base.Escalated {
				lvl = slog.LevelInfo
			}
			p.log.Log(ctx, lvl, "baseline departure", "tx", tx.ID, "identity", c.identity, "verdict", base.String())
		}
		if base.Level == baseline.Lock && base.Escalated && p.detect.baseLock {
			out, err := p.ids.Signal(ctx, tx.User.Domain, c.identity, baselineEvidence(base, tx.User.Name, tx.ID), base.String(), c.up.policy)
			logLockOutcome(p.log, tx, c.identity, "baseline", out, err)
		}
	}
	refused, tried := nextHopRefusals(tx)
	out, err := p.ids.Observe(ctx, identity.Observation{
		Domain: tx.User.Domain, User: tx.User.Name, Identity: c.identity, TxID: tx.ID,
		Class: observedClass(v.Class), Recipients: len(tx.Accepted()),
		// A baseline departure counts once, in the hour it begins.
		Suspect: v.Band == filter.BandSuspect || (base.Level >= baseline.Suspect && base.Escalated),
		Refused: refused, Tried: tried,
	}, c.up.policy)
	logLockOutcome(p.log, tx, c.identity, "thresholds", out, err)
}

// baselineFleetLock acts on a baseline verdict that a merging round found
// at the lock level: the fleet's counts of the hour reached it, though no
// node's own view did (docs/baseline.md, "In outguard"). The lock names
// the identity's last message on this node, and follows its user's policy.
func (p *pipeline) baselineFleetLock(o lastObservation, v baseline.Verdict) {
	p.log.Info("baseline departure", "tx", o.TxID, "identity", o.Identity, "verdict", v.String(), "counted", "fleet")
	if !p.detect.baseLock {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	defer cancel()
	out, err := p.ids.Signal(ctx, o.Domain, o.Identity, baselineEvidence(v, o.User, o.TxID), v.String(), o.Policy)
	switch {
	case err != nil && !errors.Is(err, identity.ErrAlreadyLocked):
		p.log.Error("locking an identity by the fleet's baseline failed", "tx", o.TxID, "identity", o.Identity, "err", err)
	case out.Locked != nil:
		p.log.Warn("identity locked automatically", "tx", o.TxID, "by", "baseline", "domain", o.Domain, "identity", o.Identity, "reason", out.Locked.Reason)
	case out.WouldLock != nil:
		p.log.Warn("identity would have been locked (monitor mode)", "tx", o.TxID, "by", "baseline", "domain", o.Domain, "identity", o.Identity)
	}
}

// logLockOutcome logs what counting or a signal did to an identity.
func logLockOutcome(log *slog.Logger, tx *smtpd.Transaction, ident, by string, out identity.Outcome, err error) {
	switch {
	case err != nil && !errors.Is(err, identity.ErrAlreadyLocked):
		log.Error("counting toward automatic locking failed", "tx", tx.ID, "by", by, "err", err)
	case out.Locked != nil:
		log.Warn("identity locked automatically", "tx", tx.ID, "by", by, "domain", tx.User.Domain, "identity", ident, "reason", out.Locked.Reason)
	case out.WouldLock != nil:
		log.Warn("identity would have been locked (monitor mode)", "tx", tx.ID, "by", by, "domain", tx.User.Domain, "identity", ident)
	}
}

// quarantine stores the message with its log record and its ARF report in
// one synced transaction: an error means none of them was kept.
func (c *check) quarantine(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message, reply *smtp.SMTPError) error {
	raw, err := msg.Bytes()
	if err != nil {
		return err
	}
	rep, err := c.p.report(tx, c, raw)
	if err != nil {
		return err
	}
	var also quarantine.Also
	if rep != nil {
		also = quarantine.Also{Bolt: rep.Put, PG: rep.PutPG}
	}
	rec := c.record(tx, msg.Size, quarantine.StatusQuarantined, reply, "", c.p.now().Sub(tx.Start))
	if err := c.p.store.QuarantineAlso(ctx, rec, raw, also); err != nil {
		return fmt.Errorf("quarantining %s: %w", tx.ID, err)
	}
	c.stored = true
	if rep != nil {
		rep.Committed()
	}
	return nil
}

// Commit writes the record of a message the next hop accepted and returns
// once it is on disk, before the client hears 250 (smtpd.Committer). It
// shares its commit with other records (quarantine.Store.AppendCoalesced).
func (c *check) Commit(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message, res smtpd.Result) error {
	if !c.p.noLog {
		if msg != nil && c.header == (headerSummary{}) {
			c.header = summarize(msg.Header)
		}
		rec := c.record(tx, res.Size, quarantine.StatusAccepted, res.Reply, res.NextHopReply, res.Duration)
		if err := c.p.store.AppendCoalesced(ctx, rec); err != nil {
			if errors.Is(err, quarantine.ErrSpoolFull) {
				// PostgreSQL is out of reach and the local spool is full.
				if c.p.disk != nil {
					c.p.disk.refusals.WithLabelValues("log_unwritable").Inc()
				}
			}
			return fmt.Errorf("recording relayed message %s: %w", tx.ID, err)
		}
		c.stored = true
	}
	c.count(ctx, tx)
	return nil
}

// Close writes the log record of a transaction that reached DATA, unless
// Quarantine or Commit already did, and counts a final verdict that was
// not counted yet.
func (c *check) Close(tx *smtpd.Transaction, msg *smtpd.Message, res smtpd.Result) {
	if res.Outcome == "" {
		return
	}
	if res.Outcome == smtpd.OutcomeFailed {
		c.refusedAfterData(tx, msg, res)
	}
	if res.Outcome != smtpd.OutcomeDeferred && res.Outcome != smtpd.OutcomeQuarantined {
		ctx := deadline.New(10 * time.Second)
		c.count(ctx, tx)
		ctx.Release()
	}
	if c.stored || c.p.noLog {
		return
	}
	status := map[string]quarantine.Status{
		smtpd.OutcomeAccepted: quarantine.StatusAccepted,
		smtpd.OutcomeRejected: quarantine.StatusRejected,
		smtpd.OutcomeDeferred: quarantine.StatusDeferred,
		smtpd.OutcomeFailed:   quarantine.StatusFailed,
		// A refusal the pipeline meant to quarantine but could not store
		// is deferred (the client retries).
		smtpd.OutcomeQuarantined: quarantine.StatusDeferred,
	}[res.Outcome]
	if msg != nil && c.header == (headerSummary{}) {
		c.header = summarize(msg.Header)
	}
	rec := c.record(tx, res.Size, status, res.Reply, res.NextHopReply, res.Duration)
	if err := c.p.store.Append(rec); err != nil {
		c.p.log.Error("message log write failed", "tx", tx.ID, "err", err)
	}
}

func (c *check) record(tx *smtpd.Transaction, size int64, status quarantine.Status, reply *smtp.SMTPError, nextHop string, d time.Duration) *quarantine.Record {
	rec := &quarantine.Record{
		ID: tx.ID, Time: tx.Start, Listener: tx.Listener,
		ClientIP: tx.Client.Addr(), ClientPort: tx.Client.Port(),
		Identity: c.identity, IdentitySource: c.identitySource, IdentityReason: c.identityReason, Sender: tx.From,
		HeaderFrom: c.header.from, Subject: c.header.subject, MessageID: c.header.messageID,
		Size: size, Status: status, NextHopReply: nextHop, Duration: d, TraceToken: c.trace,
	}
	if tx.User != nil {
		rec.User, rec.Domain = tx.User.Name, tx.User.Domain
	}
	if c.classified {
		rec.Verdict = verdictOf(c.verdict.Class)
		rec.Score = c.verdict.Score
		rec.Reasons = c.verdict.Reasons
		rec.Band = bandOf(c.verdict.Band)
		rec.Model = c.verdict.ModelVersion
		rec.Campaign = c.campaign
		rec.Partial = filter.PartialLimits(c.verdict.Gaps)
	}
	for _, r := range tx.Rcpts {
		rc := quarantine.Recipient{Address: r.Addr, Code: r.Code, Text: r.Message, Refused: r.Refused}
		if !rc.Refused && reply != nil {
			rc.Code, rc.Text = reply.Code, reply.Message
		}
		rec.Recipients = append(rec.Recipients, rc)
	}
	return rec
}

// AppendLogAttrs adds what the check learnt to the transaction's log
// line (smtpd.LogAttrser): the identity, and the verdict with its score
// once the message was classified.
func (c *check) AppendLogAttrs(attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs, slog.String("identity", c.identity))
	if c.classified {
		attrs = append(attrs, slog.String("verdict", c.verdict.Class.String()), slog.Float64("score", c.verdict.Score))
		if c.verdict.Band == filter.BandSuspect {
			attrs = append(attrs, slog.String("band", "suspect"))
		}
	}
	return attrs
}
