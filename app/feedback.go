package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// feedbackBucket keeps every accepted third-party feedback report, raw and
// with what intake made of it, under "<id>/raw" and "<id>/meta"; ids sort
// by arrival. feedbackIndexBucket de-duplicates: "d/<sha256 of the raw
// report>" and "k/<reporter>\x00<transaction>" name the id of the report
// that holds them. Retention removes a report and its index entries
// together.
var (
	feedbackBucket      = []byte("app_feedback")
	feedbackIndexBucket = []byte("app_feedback_index")
)

// Reasons a complaint was not counted toward automatic locking
// (FeedbackResult.NotCounted).
const (
	notCountedUnlisted     = "unlisted-reporter"    // from no reporter in arf.reporters
	notCountedUnattributed = "not-attributed"       // no transaction or identity found
	notCountedIdentityOnly = "identity-header-only" // found by the identity header alone, and the reporter does not opt in
	notCountedNoIdentity   = "no-identity"          // the transaction has no identity to count
	notCountedType         = "feedback-type"        // not an abuse, fraud or virus report
	notCountedDuplicate    = "duplicate"            // this reporter already complained about this transaction
)

// FeedbackResult is what intake made of one report: the parse result, the
// attribution and what it led to.
type FeedbackResult struct {
	// ID is the intake id under which the report is stored; "" when it
	// was refused or is a copy of a stored one.
	ID     string     `json:"id"`
	Source string     `json:"source"`
	Parse  arf.Result `json:"parse"`
	// Received is when intake got the report.
	Received time.Time `json:"received"`
	// Reporter is the arf.reporters entry the report came from, "" when
	// none.
	Reporter string `json:"reporter"`
	// Method is how the complaint was attributed: trace-token,
	// message-id, identity-header or none.
	Method   string `json:"attribution"`
	TxID     string `json:"tx_id,omitempty"`
	Domain   string `json:"domain,omitempty"`
	User     string `json:"user,omitempty"`
	Identity string `json:"identity,omitempty"`
	// Counted is set when the complaint was counted toward automatic
	// locking; otherwise NotCounted says why.
	Counted    bool   `json:"counted"`
	NotCounted string `json:"not_counted,omitempty"`
	// Duplicate is set for a report already received (DuplicateOf is its
	// id; nothing was stored) or a second complaint of the same reporter
	// about the same transaction (stored, not counted).
	Duplicate   bool   `json:"duplicate,omitempty"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Locked is set when this complaint locked the identity.
	Locked bool `json:"locked"`
	// Learned is set when the complaint's original taught the content
	// model (an allow-listed reporter's report with the original).
	Learned bool `json:"learned,omitempty"`

	// Digest and DedupKey are the index entries the report holds, kept
	// with it so that retention can remove them; not shown by the API.
	Digest   string `json:"digest,omitempty"`
	DedupKey string `json:"dedup_key,omitempty"`
}

// ErrNotFeedback wraps the parser's refusal of a message that is not a
// feedback report.
var ErrNotFeedback = errors.New("not a feedback report")

// feedbackSettings are the reloadable settings of intake.
type feedbackSettings struct {
	identityHeader, traceHeader string
	maxBytes                    int64
	retention                   time.Duration
	reporters                   []config.Reporter
	// learn is set when allow-listed complaints teach the content model.
	learn bool
}

// feedbackIntake parses, stores, attributes and counts third-party
// feedback, from SMTP (mail to the feedback address), the HTTP API and the
// CLI.
type feedbackIntake struct {
	p   *pipeline
	db  *bolt.DB
	log *slog.Logger
	set atomic.Pointer[feedbackSettings]
	// mu makes the duplicate check and the store one step.
	mu       sync.Mutex
	ingested *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	pruned   prometheus.Counter
	newID    func(time.Time) string
	now      func() time.Time

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// feedbackPruneEvery is how often retention runs.
const feedbackPruneEvery = time.Hour

func newFeedbackIntake(p *pipeline, db *bolt.DB, reg prometheus.Registerer, log *slog.Logger) (*feedbackIntake, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(feedbackBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(feedbackIndexBucket)
		return err
	}); err != nil {
		return nil, err
	}
	f := &feedbackIntake{p: p, db: db, log: log, newID: quarantine.NewID, now: p.now,
		ingested: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_feedback_ingested_total",
			Help: "Third-party feedback reports received, by feedback type (abuse, fraud, virus, other, refused) and attribution (trace-token, message-id, identity-header, none).",
		}, []string{"type", "attribution"}),
		outcomes: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "outguard_feedback_complaints_total",
			Help: "Accepted feedback reports by outcome: counted toward automatic locking, duplicate, or not counted (unlisted reporter, unattributed, identity header only, ...).",
		}, []string{"outcome"}),
		pruned: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "outguard_feedback_pruned_total",
			Help: "Stored feedback reports removed by arf.feedback_retention.",
		}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	f.set.Store(&feedbackSettings{identityHeader: arf.DefaultIdentityHeader, traceHeader: arf.DefaultTraceHeader,
		maxBytes: arf.DefaultParseMaxBytes, retention: config.DefaultFeedbackRetention})
	return f, nil
}

func (f *feedbackIntake) configure(s *feedbackSettings) { f.set.Store(s) }

// start runs retention now and every feedbackPruneEvery until Stop.
func (f *feedbackIntake) start() {
	f.started.Store(true)
	go func() {
		defer close(f.done)
		t := time.NewTicker(feedbackPruneEvery)
		defer t.Stop()
		for {
			f.pruneLogged()
			select {
			case <-f.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends retention runs and waits for the current one; safe to call
// more than once, and without start.
func (f *feedbackIntake) Stop() {
	f.stopOnce.Do(func() { close(f.stop) })
	if f.started.Load() {
		<-f.done
	}
}

func (f *feedbackIntake) pruneLogged() {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("feedback retention panicked", "panic", r)
		}
	}()
	n, err := f.prune(f.now().Add(-f.set.Load().retention))
	if err != nil {
		f.log.Error("feedback retention failed", "err", err)
		return
	}
	if n > 0 {
		f.log.Info("feedback retention removed old reports", "count", n)
	}
}

// prune removes the reports received before cutoff with their index
// entries, in batches so that no write transaction runs long.
func (f *feedbackIntake) prune(cutoff time.Time) (int, error) {
	const batch = 500
	total := 0
	for {
		n, more := 0, false
		err := f.db.Update(func(tx *bolt.Tx) error {
			b, idx := tx.Bucket(feedbackBucket), tx.Bucket(feedbackIndexBucket)
			var old []string
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				id, kind, ok := strings.Cut(string(k), "/")
				if !ok || kind != "meta" {
					continue
				}
				// The id holds the arrival time (reports stored before
				// Received was recorded have only that).
				at, err := quarantine.IDTime(id)
				if err != nil {
					continue
				}
				if !at.Before(cutoff) {
					// Ids sort by arrival: the rest is newer.
					break
				}
				if len(old) == batch {
					more = true
					break
				}
				old = append(old, id)
				var r FeedbackResult
				if json.Unmarshal(v, &r) != nil {
					continue
				}
				for _, ik := range []string{r.Digest, r.DedupKey} {
					if ik == "" {
						continue
					}
					if got := idx.Get([]byte(ik)); string(got) == id {
						if err := idx.Delete([]byte(ik)); err != nil {
							return err
						}
					}
				}
			}
			for _, id := range old {
				if err := b.Delete([]byte(id + "/meta")); err != nil {
					return err
				}
				if err := b.Delete([]byte(id + "/raw")); err != nil {
					return err
				}
			}
			n = len(old)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("pruning feedback: %w", err)
		}
		total += n
		f.pruned.Add(float64(n))
		if !more {
			return total, nil
		}
	}
}

// reporter returns the allow-listed reporter that sent a report, or nil.
// client is the SMTP client (invalid for uploads, which match only
// reporters without networks); envFrom the envelope sender ("" for
// uploads); from the report's From address.
func (s *feedbackSettings) reporter(client netip.Addr, envFrom, from string) *config.Reporter {
	domains := []string{domainOf(envFrom), domainOf(from)}
	for i := range s.reporters {
		r := &s.reporters[i]
		if len(r.Networks) > 0 {
			if !client.IsValid() || !slices.ContainsFunc(r.Networks, func(p netip.Prefix) bool { return p.Contains(client.Unmap()) }) {
				continue
			}
		}
		if len(r.Domains) > 0 && !slices.ContainsFunc(domains, func(d string) bool { return d != "" && slices.Contains(r.Domains, d) }) {
			continue
		}
		return r
	}
	return nil
}

func domainOf(addr string) string {
	_, d, ok := strings.Cut(strings.Trim(addr, "<> "), "@")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

func feedbackTypeLabel(t string) string {
	switch t = strings.ToLower(t); t {
	case "abuse", "fraud", "virus":
		return t
	}
	return "other"
}

// Ingest handles one uploaded report (HTTP API, CLI). A report that is not
// feedback comes back as an error wrapping ErrNotFeedback, with the parse
// result filled in; an accepted one is stored (synced) before Ingest
// returns, unless it is a copy of one already stored (Duplicate).
func (f *feedbackIntake) Ingest(ctx context.Context, raw []byte, source string) (FeedbackResult, error) {
	return f.ingest(ctx, raw, source, netip.Addr{}, "")
}

// ingest is Ingest for a report that came over SMTP from client with the
// envelope sender envFrom (invalid and "" for uploads).
func (f *feedbackIntake) ingest(ctx context.Context, raw []byte, source string, client netip.Addr, envFrom string) (FeedbackResult, error) {
	set := f.set.Load()
	res := FeedbackResult{Source: source, Method: string(arf.MethodNone)}
	fb, err := arf.Parse(bytes.NewReader(raw), arf.ParseOptions{
		IdentityHeader: set.identityHeader, TraceHeader: set.traceHeader, MaxBytes: set.maxBytes,
	})
	res.Parse = arf.NewResult(source, fb, err)
	if err != nil {
		f.ingested.WithLabelValues("refused", string(arf.MethodNone)).Inc()
		return res, fmt.Errorf("%w: %s", ErrNotFeedback, res.Parse.Detail)
	}
	sum := sha256.Sum256(raw)
	res.Digest = "d/" + hex.EncodeToString(sum[:])
	rep := set.reporter(client, envFrom, fb.From)
	if rep != nil {
		res.Reporter = rep.Name
	}

	attr, err := arf.Attribute(ctx, fb, storeLookup{f.p.store})
	if err != nil {
		return res, fmt.Errorf("attributing feedback: %w", err)
	}
	res.Method = string(attr.Method)
	res.TxID, res.Domain, res.User, res.Identity = attr.Tx.TxID, attr.Tx.Domain, attr.Tx.User, attr.Tx.Identity

	// What one complaint is about, for de-duplication per reporter: the
	// transaction, or for an identity-header attribution the identity and
	// the original's Message-ID (or the report itself without one).
	about := ""
	switch attr.Method {
	case arf.MethodTraceToken, arf.MethodMessageID:
		about = "tx:" + res.TxID
	case arf.MethodIdentityHeader:
		orig := fb.MessageID
		if orig == "" {
			orig = res.Digest
		}
		about = "id:" + strings.ToLower(res.Domain) + "\x00" + strings.ToLower(res.Identity) + "\x00" + orig
	}
	if rep != nil && about != "" {
		res.DedupKey = "k/" + rep.Name + "\x00" + about
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	res.Received = now
	var dupOf string
	err = f.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(feedbackIndexBucket)
		if id := idx.Get([]byte(res.Digest)); id != nil {
			res.Duplicate, res.DuplicateOf, res.NotCounted = true, string(id), notCountedDuplicate
			return nil
		}
		if res.DedupKey != "" {
			if id := idx.Get([]byte(res.DedupKey)); id != nil {
				dupOf = string(id)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("reading the feedback index: %w", err)
	}
	if res.Duplicate {
		// The very same report again: nothing to store or count.
		f.outcomes.WithLabelValues("duplicate").Inc()
		f.log.Info("feedback report received again; ignored", "duplicate_of", res.DuplicateOf, "source", source)
		return res, nil
	}

	counts := false
	typ := strings.ToLower(fb.FeedbackType)
	switch {
	case rep == nil:
		res.NotCounted = notCountedUnlisted
	case attr.Method == arf.MethodNone:
		res.NotCounted = notCountedUnattributed
	case attr.Method == arf.MethodIdentityHeader && !rep.CountIdentityHeader:
		res.NotCounted = notCountedIdentityOnly
	case res.Identity == "" || res.Domain == "":
		res.NotCounted = notCountedNoIdentity
	case typ != "abuse" && typ != "fraud" && typ != "virus":
		res.NotCounted = notCountedType
	case dupOf != "":
		res.NotCounted, res.Duplicate, res.DuplicateOf = notCountedDuplicate, true, dupOf
	default:
		counts = true
	}
	res.ID = f.newID(now)
	res.Counted = counts

	// Store first: a report accepted is a report kept. The index entries
	// go with it, so a second copy finds them.
	meta, err := json.Marshal(res)
	if err != nil {
		return res, err
	}
	if err := f.db.Update(func(tx *bolt.Tx) error {
		b, idx := tx.Bucket(feedbackBucket), tx.Bucket(feedbackIndexBucket)
		if err := b.Put([]byte(res.ID+"/meta"), meta); err != nil {
			return err
		}
		if err := b.Put([]byte(res.ID+"/raw"), raw); err != nil {
			return err
		}
		if err := idx.Put([]byte(res.Digest), []byte(res.ID)); err != nil {
			return err
		}
		if counts && res.DedupKey != "" {
			return idx.Put([]byte(res.DedupKey), []byte(res.ID))
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("storing feedback: %w", err)
	}

	if counts {
		if res.TxID != "" {
			if err := f.p.store.AddComplaint(ctx, res.TxID, quarantine.Complaint{Time: now}); err != nil && !errors.Is(err, quarantine.ErrNotFound) {
				f.log.Error("recording complaint on the log record failed", "tx", res.TxID, "err", err)
			}
		}
		up := f.p.state.Load().user(res.User)
		out, err := f.p.ids.Observe(ctx, identity.Observation{
			Domain: res.Domain, User: res.User, Identity: res.Identity, TxID: res.TxID, Complaint: true,
		}, up.policy)
		if err != nil {
			f.log.Error("counting complaint failed", "feedback", res.ID, "err", err)
		} else if out.Locked != nil {
			res.Locked = true
			f.log.Warn("identity locked by complaints", "feedback", res.ID, "domain", res.Domain, "identity", res.Identity)
		}
		if set.learn {
			f.learnFrom(fb, &res)
		}
		f.outcomes.WithLabelValues("counted").Inc()
	} else if res.Duplicate {
		f.outcomes.WithLabelValues("duplicate").Inc()
	} else {
		f.outcomes.WithLabelValues("not_counted").Inc()
	}
	f.ingested.WithLabelValues(feedbackTypeLabel(fb.FeedbackType), res.Method).Inc()
	f.log.Info("feedback received", "feedback", res.ID, "source", source, "reporter", res.Reporter, "type", fb.FeedbackType,
		"attribution", res.Method, "tx", res.TxID, "domain", res.Domain, "identity", res.Identity,
		"counted", res.Counted, "not_counted", res.NotCounted)
	return res, nil
}

// List returns stored reports, newest first: at most limit (1 to 1000),
// older than the id before ("" for the newest), only counted or only not
// counted ones when counted is non-nil. next is the id to pass as before
// for the next page, "" at the end.
func (f *feedbackIntake) List(limit int, before string, counted *bool) (out []FeedbackResult, next string, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	err = f.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(feedbackBucket).Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			if k, _ = c.Seek([]byte(before + "/")); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil; k, v = c.Prev() {
			id, kind, ok := strings.Cut(string(k), "/")
			if !ok || kind != "meta" {
				continue
			}
			var r FeedbackResult
			if json.Unmarshal(v, &r) != nil {
				continue
			}
			if counted != nil && r.Counted != *counted {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			r.ID = id
			out = append(out, r)
		}
		return nil
	})
	return out, next, err
}

// learnFrom teaches the content model that the original of a counted
// complaint is spam: it came from an allow-listed reporter and was
// attributed to a transaction of ours (so the original is mail we relayed,
// not a third party's). It must be an abuse or fraud report carrying the
// whole original; a report that fails any of that still counts as a
// complaint, it only teaches nothing.
func (f *feedbackIntake) learnFrom(fb *arf.Feedback, res *FeedbackResult) {
	l := f.p.learner
	if l == nil || fb.Original == nil || res.TxID == "" {
		return
	}
	switch strings.ToLower(fb.FeedbackType) {
	case "abuse", "fraud":
	default:
		return
	}
	m, err := filter.ParseBytes(fb.Original, filter.DefaultLimits())
	if err != nil {
		return
	}
	before, after, err := filter.LearnMessage(l, m, true)
	if err != nil {
		f.log.Warn("learning from a complaint failed", "feedback", res.ID, "err", err)
		return
	}
	res.Learned = true
	f.log.Info("content model learnt a complaint's original as spam", "feedback", res.ID, "tx", res.TxID, "before", before, "after", after)
}

// storeLookup attributes complaints through the message log.
type storeLookup struct{ s *quarantine.Store }

func ref(r *quarantine.Record) arf.TxRef {
	return arf.TxRef{TxID: r.ID, Domain: r.Domain, User: r.User, Identity: r.Identity}
}

// relayed reports whether a log record is of mail outguard handed on: a
// complaint can only be about such mail (a refused message never reached
// the complainant).
func relayed(r *quarantine.Record) bool { return r.Status == quarantine.StatusAccepted }

func (l storeLookup) ByTraceToken(ctx context.Context, token string) (arf.TxRef, bool, error) {
	tok, ok := identity.ParseTraceToken(token)
	if !ok {
		return arf.TxRef{}, false, nil
	}
	r, err := l.s.ByTraceToken(tok)
	if errors.Is(err, quarantine.ErrNotFound) || err == nil && !relayed(r) {
		return arf.TxRef{}, false, nil
	}
	if err != nil {
		return arf.TxRef{}, false, err
	}
	return ref(r), true, nil
}

func (l storeLookup) ByMessageID(ctx context.Context, id string) (arf.TxRef, bool, error) {
	r, err := l.s.ByMessageID(id)
	if errors.Is(err, quarantine.ErrNotFound) || err == nil && !relayed(r) {
		return arf.TxRef{}, false, nil
	}
	if err != nil {
		return arf.TxRef{}, false, err
	}
	return ref(r), true, nil
}

// ByIdentity finds the user and domain an identity last sent through.
func (l storeLookup) ByIdentity(ctx context.Context, ident string) (arf.TxRef, bool, error) {
	page, err := l.s.Search(quarantine.Query{Identity: ident, Limit: 1})
	if err != nil {
		return arf.TxRef{}, false, err
	}
	if len(page.Records) == 0 {
		return arf.TxRef{}, false, nil
	}
	r := ref(page.Records[0])
	r.TxID = "" // the identity is known, not which message was complained about
	return r, true, nil
}

// feedbackCheck handles mail to the feedback address on a feedback
// listener: the report is consumed, never relayed.
type feedbackCheck struct{ p *pipeline }

var _ smtpd.RcptChecker = (*feedbackCheck)(nil)

// replyTooBig refuses a report over arf.parse_max_bytes: a property of the
// message, so permanent (RFC 5321 section 4.5.3.1.10; docs/config-arf.md).
func replyTooBig(max int64) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: fmt.Sprintf("Feedback report too large: at most %d bytes", max)}
}

// Rcpt refuses the feedback address when the client declared a SIZE over
// the limit, before it sends the report.
func (c *feedbackCheck) Rcpt(ctx context.Context, tx *smtpd.Transaction, to string) error {
	if max := c.p.feedback.set.Load().maxBytes; tx.Opts.Size > max {
		return replyTooBig(max)
	}
	return nil
}

func (c *feedbackCheck) Data(ctx context.Context, tx *smtpd.Transaction, msg *smtpd.Message) (smtpd.Decision, error) {
	if max := c.p.feedback.set.Load().maxBytes; msg.Size > max {
		r := replyTooBig(max)
		r.Message += " (id " + tx.ID + ")"
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected, Reply: r}, nil
	}
	raw, err := msg.Bytes()
	if err != nil {
		return smtpd.Decision{}, err
	}
	res, err := c.p.feedback.ingest(ctx, raw, "smtp:"+tx.Client.Addr().String(), tx.Client.Addr(), tx.From)
	if errors.Is(err, ErrNotFeedback) {
		return smtpd.Decision{Action: smtpd.Refuse, Outcome: smtpd.OutcomeRejected,
			Reply: refusal(550, smtp.EnhancedCode{5, 6, 0}, "not a feedback report ("+res.Parse.Error+"); send ARF (RFC 5965) reports here", tx.ID)}, nil
	}
	if err != nil {
		return smtpd.Decision{}, err
	}
	return smtpd.Decision{Action: smtpd.Consume}, nil
}

func (c *feedbackCheck) Close(*smtpd.Transaction, *smtpd.Message, smtpd.Result) {}
