package feedback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/quarantine"
)

// Settings are the reloadable settings of intake (docs/config-arf.md).
type Settings struct {
	// IdentityHeader and TraceHeader name the header fields attribution
	// reads in the complained-about original.
	IdentityHeader, TraceHeader string
	// IdentityOccurrence is the occurrence of IdentityHeader that names
	// the identity (arf.ParseOptions.IdentityOccurrence).
	IdentityOccurrence arf.Occurrence
	// MaxBytes is the largest report parsed (arf.parse_max_bytes).
	MaxBytes int64
	// Retention is how long reports are kept (arf.feedback_retention).
	Retention time.Duration
	// Reporters are the allow-listed feedback loops.
	Reporters []config.Reporter
	// Learn is set when allow-listed complaints teach the content model.
	Learn bool
}

// Options are what New needs. Log and one of DB and Postgres are
// required.
type Options struct {
	// DB is this node's bbolt database.
	DB *bolt.DB
	// Postgres, instead of DB, is the database a fleet of nodes shares
	// (store.backend postgres): the reports and the de-duplication index
	// are its tables feedback_reports and feedback_index, so that a
	// report received by one node is a duplicate on the others.
	Postgres *pgxpool.Pool
	// Node is this node's name, recorded with the reports it stores;
	// required with Postgres.
	Node string
	// Log is the message log complaints are attributed through.
	Log MessageLog
	// Locks counts complaints; nil counts nothing.
	Locks LockObserver
	// Learner is the content model; nil teaches nothing.
	Learner    Learner
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
	Registerer prometheus.Registerer
}

// Intake parses, stores, attributes and counts third-party feedback, from
// SMTP (mail to the feedback address), the HTTP API and the CLI.
type Intake struct {
	store   store
	msgs    MessageLog
	locks   LockObserver
	learner Learner
	log     *slog.Logger
	m       *metrics
	set     atomic.Pointer[Settings]
	// mu makes the duplicate check and the store one step.
	mu    sync.Mutex
	newID func(time.Time) string
	now   func() time.Time

	started  atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// pruneEvery is how often retention runs.
const pruneEvery = time.Hour

// New opens the intake's buckets on o.DB, or its tables on o.Postgres.
// Until Configure it uses the default settings with no allow-listed
// reporter.
func New(o Options) (*Intake, error) {
	if (o.DB == nil) == (o.Postgres == nil) || o.Log == nil {
		return nil, errors.New("feedback: Log and one of DB and Postgres are required")
	}
	if o.Postgres != nil && o.Node == "" {
		return nil, errors.New("feedback: Postgres needs Node")
	}
	var st store
	if o.DB != nil {
		bs, err := newBoltStore(o.DB)
		if err != nil {
			return nil, err
		}
		st = bs
	} else {
		st = &pgStore{pool: o.Postgres, node: o.Node}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	in := &Intake{store: st, msgs: o.Log, locks: o.Locks, learner: o.Learner, log: o.Logger,
		m: newMetrics(o.Registerer), newID: quarantine.NewID, now: o.Now,
		stop: make(chan struct{}), done: make(chan struct{})}
	in.set.Store(&Settings{IdentityHeader: arf.DefaultIdentityHeader, TraceHeader: arf.DefaultTraceHeader,
		MaxBytes: arf.DefaultParseMaxBytes, Retention: config.DefaultFeedbackRetention})
	return in, nil
}

// Configure swaps in new settings; reports already being ingested finish
// with the old ones.
func (in *Intake) Configure(s Settings) { in.set.Store(&s) }

// MaxBytes is the size limit of a report (arf.parse_max_bytes).
func (in *Intake) MaxBytes() int64 { return in.set.Load().MaxBytes }

// Start runs retention now and every hour until Stop.
func (in *Intake) Start() {
	in.started.Store(true)
	go func() {
		defer close(in.done)
		t := time.NewTicker(pruneEvery)
		defer t.Stop()
		for {
			in.PruneNow()
			select {
			case <-in.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends retention runs and waits for the current one; safe to call
// more than once, and without Start.
func (in *Intake) Stop() {
	in.stopOnce.Do(func() { close(in.stop) })
	if in.started.Load() {
		<-in.done
	}
}

// PruneNow runs retention once: it removes the reports older than
// arf.feedback_retention and logs what it did.
func (in *Intake) PruneNow() {
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("feedback retention panicked", "panic", r)
		}
	}()
	n, err := in.prune(in.now().Add(-in.set.Load().Retention))
	if err != nil {
		in.log.Error("feedback retention failed", "err", err)
		return
	}
	if n > 0 {
		in.log.Info("feedback retention removed old reports", "count", n)
	}
}

// Ingest handles one uploaded report (HTTP API, CLI). A report that is not
// feedback comes back as an error wrapping ErrNotFeedback, with the parse
// result filled in; an accepted one is stored (synced) before Ingest
// returns, unless it is a copy of one already stored (Duplicate).
func (in *Intake) Ingest(ctx context.Context, raw []byte, source string) (Result, error) {
	return in.IngestSMTP(ctx, raw, source, netip.Addr{}, "")
}

// IngestSMTP is Ingest for a report that came over SMTP from client with
// the envelope sender envFrom: both take part in matching the reporter.
func (in *Intake) IngestSMTP(ctx context.Context, raw []byte, source string, client netip.Addr, envFrom string) (Result, error) {
	set := in.set.Load()
	res := Result{Source: source, Method: string(arf.MethodNone)}
	fb, err := arf.Parse(bytes.NewReader(raw), arf.ParseOptions{
		IdentityHeader: set.IdentityHeader, IdentityOccurrence: set.IdentityOccurrence,
		TraceHeader: set.TraceHeader, MaxBytes: set.MaxBytes,
	})
	res.Parse = arf.NewResult(source, fb, err)
	if err != nil {
		in.m.ingested.WithLabelValues("refused", string(arf.MethodNone)).Inc()
		return res, fmt.Errorf("%w: %s", ErrNotFeedback, res.Parse.Detail)
	}
	sum := sha256.Sum256(raw)
	res.Digest = "d/" + hex.EncodeToString(sum[:])
	rep := set.reporter(client, envFrom, fb.From)
	if rep != nil {
		res.Reporter = rep.Name
	}

	attr, err := arf.Attribute(ctx, fb, in.msgs)
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

	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()
	res.Received = now
	digestOf, dupOf, err := in.store.lookup(ctx, res.Digest, res.DedupKey)
	if err != nil {
		return res, fmt.Errorf("reading the feedback index: %w", err)
	}
	if digestOf != "" {
		return in.sameReport(res, digestOf, source), nil
	}

	counts := false
	typ := strings.ToLower(fb.FeedbackType)
	switch {
	case rep == nil:
		res.NotCounted = NotCountedUnlisted
	case attr.Method == arf.MethodNone:
		res.NotCounted = NotCountedUnattributed
	case attr.Method == arf.MethodIdentityHeader && !rep.CountIdentityHeader:
		res.NotCounted = NotCountedIdentityOnly
	case res.Identity == "" || res.Domain == "":
		res.NotCounted = NotCountedNoIdentity
	case typ != "abuse" && typ != "fraud" && typ != "virus":
		res.NotCounted = NotCountedType
	case dupOf != "":
		res.NotCounted, res.Duplicate, res.DuplicateOf = NotCountedDuplicate, true, dupOf
	default:
		counts = true
	}
	res.ID = in.newID(now)
	res.Counted = counts

	// Store first: a report accepted is a report kept. The index entries
	// go with it, so a second copy finds them. The store checks the
	// index again in its transaction: another node may have stored a
	// copy, or counted a complaint about the same transaction, since the
	// lookup above.
	digestOf, err = in.store.put(ctx, &res, raw)
	if err != nil {
		return res, fmt.Errorf("storing feedback: %w", err)
	}
	if digestOf != "" {
		res.ID, res.Counted, res.NotCounted = "", false, ""
		return in.sameReport(res, digestOf, source), nil
	}
	counts = res.Counted

	if counts {
		in.count(ctx, fb, &res, now, set.Learn)
		in.m.outcomes.WithLabelValues("counted").Inc()
	} else if res.Duplicate {
		in.m.outcomes.WithLabelValues("duplicate").Inc()
	} else {
		in.m.outcomes.WithLabelValues("not_counted").Inc()
	}
	in.m.ingested.WithLabelValues(typeLabel(fb.FeedbackType), res.Method).Inc()
	in.log.Info("feedback received", "feedback", res.ID, "source", source, "reporter", res.Reporter, "type", fb.FeedbackType,
		"attribution", res.Method, "tx", res.TxID, "domain", res.Domain, "identity", res.Identity,
		"counted", res.Counted, "not_counted", res.NotCounted)
	return res, nil
}

// sameReport is the outcome of a report already stored as id: nothing
// is stored or counted.
func (in *Intake) sameReport(res Result, id, source string) Result {
	res.Duplicate, res.DuplicateOf, res.NotCounted = true, id, NotCountedDuplicate
	in.m.outcomes.WithLabelValues("duplicate").Inc()
	in.log.Info("feedback report received again; ignored", "duplicate_of", id, "source", source)
	return res
}

// prune removes the reports received before cutoff with their index
// entries, in batches so that no write transaction runs long.
func (in *Intake) prune(cutoff time.Time) (int, error) {
	const batch = 500
	total := 0
	for {
		n, more, err := in.store.prune(context.Background(), cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("pruning feedback: %w", err)
		}
		total += n
		in.m.pruned.Add(float64(n))
		if !more {
			return total, nil
		}
	}
}

// List returns stored reports, newest first: at most limit (1 to 1000),
// older than the id before ("" for the newest), only counted or only not
// counted ones when counted is non-nil. next is the id to pass as before
// for the next page, "" at the end.
func (in *Intake) List(limit int, before string, counted *bool) (out []Result, next string, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return in.store.list(context.Background(), limit, before, counted)
}

// count acts on a stored, counted complaint: it marks the message-log
// record, counts the complaint toward automatic locking and, when learn
// is set, teaches the content model.
func (in *Intake) count(ctx context.Context, fb *arf.Feedback, res *Result, now time.Time, learn bool) {
	if res.TxID != "" {
		if err := in.msgs.AddComplaint(ctx, res.TxID, now); err != nil {
			in.log.Error("recording complaint on the log record failed", "tx", res.TxID, "err", err)
		}
	}
	if in.locks != nil {
		locked, err := in.locks.ObserveComplaint(ctx, Complaint{Domain: res.Domain, User: res.User, Identity: res.Identity, TxID: res.TxID})
		if err != nil {
			in.log.Error("counting complaint failed", "feedback", res.ID, "err", err)
		} else if locked {
			res.Locked = true
			in.log.Warn("identity locked by complaints", "feedback", res.ID, "domain", res.Domain, "identity", res.Identity)
		}
	}
	if learn {
		in.learnFrom(fb, res)
	}
}

// learnFrom teaches the content model that the original of a counted
// complaint is spam: it came from an allow-listed reporter and was
// attributed to a transaction of ours (so the original is mail we relayed,
// not a third party's). It must be an abuse or fraud report carrying the
// whole original; a report that fails any of that still counts as a
// complaint, it only teaches nothing.
func (in *Intake) learnFrom(fb *arf.Feedback, res *Result) {
	if in.learner == nil || fb.Original == nil || res.TxID == "" {
		return
	}
	switch strings.ToLower(fb.FeedbackType) {
	case "abuse", "fraud":
	default:
		return
	}
	before, after, err := in.learner.LearnSpam(fb.Original)
	if err != nil {
		in.log.Warn("learning from a complaint failed", "feedback", res.ID, "err", err)
		return
	}
	res.Learned = true
	in.log.Info("content model learnt a complaint's original as spam", "feedback", res.ID, "tx", res.TxID, "before", before, "after", after)
}
