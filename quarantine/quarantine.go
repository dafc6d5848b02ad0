package quarantine

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.etcd.io/bbolt"
)

// Actor is who performs an admin operation on the quarantine, and the
// administrative domain their access is limited to.
type Actor struct {
	// Name is recorded on the record (release, deletion).
	Name string
	// Reason and Learn are recorded with a release
	// (QuarantineInfo.ReleaseReason and ReleaseLearn); other operations
	// ignore them.
	Reason string
	Learn  bool
	// Domain limits the operation to records of that administrative
	// domain; a record of another domain is reported as ErrNotFound. ""
	// allows every domain.
	Domain string
}

func (a Actor) allows(r *Record) bool { return r.InDomain(a.Domain) }

// Quarantine writes rec to the message log together with raw, the message
// as received, compressed, and returns once both are synced to disk: the
// caller may then refuse the message, knowing it can be released later.
// The write joins the committer's current round, so concurrent
// quarantines and queued log records share one fsync. rec.Status must not
// be StatusAccepted. An error means nothing was written, also when ctx
// ended first: the caller answers with a temporary failure and the retry
// starts afresh.
func (s *Store) Quarantine(ctx context.Context, rec *Record, raw []byte) error {
	return s.QuarantineWith(ctx, rec, raw, nil)
}

// QuarantineWith is Quarantine that also runs also in the same bbolt
// transaction, after the record and content are in place: the pipeline
// stores the message's ARF report there, so that the message, its record
// and its report are written together or not at all. also may run more
// than once (a failed round is retried op by op) and must not commit or
// keep tx. An error from it is returned and nothing is written.
func (s *Store) QuarantineWith(ctx context.Context, rec *Record, raw []byte, also func(*bbolt.Tx) error) error {
	return s.QuarantineAlso(ctx, rec, raw, Also{Bolt: also})
}

// Also is work written in the same transaction as a quarantined record,
// one function per backend: Bolt on the bbolt backend, PG on PostgreSQL.
// The function of the store's backend must be set when the other is (a
// report staged for one backend only is refused rather than dropped).
// Either may run more than once (a failed round is retried op by op) and
// must not commit or keep the transaction.
type Also struct {
	Bolt func(*bbolt.Tx) error
	PG   func(context.Context, pgx.Tx) error
}

func (a Also) set() bool { return a.Bolt != nil || a.PG != nil }

// QuarantineAlso is QuarantineWith for either backend: also's function
// for the store's backend runs in the transaction of the record.
func (s *Store) QuarantineAlso(ctx context.Context, rec *Record, raw []byte, also Also) error {
	if rec == nil {
		return fmt.Errorf("%w: nil", ErrBadRecord)
	}
	if also.set() && !s.be.takes(also) {
		return fmt.Errorf("quarantine: the work to write with %s has no function for this store's backend", rec.ID)
	}
	r := *rec
	if err := r.validate(); err != nil {
		return err
	}
	if r.Status == StatusAccepted {
		return fmt.Errorf("%w: %s: an accepted message cannot be quarantined", ErrBadRecord, r.ID)
	}
	content, err := s.compress(raw)
	if err != nil {
		return fmt.Errorf("quarantine: compressing %s: %w", r.ID, err)
	}
	r.Quarantine = &QuarantineInfo{RawSize: int64(len(raw)), StoredSize: int64(len(content))}
	o := newRecordOp(&r)
	o.content = content
	o.also = also
	return s.submit(ctx, o)
}

var flateWriters [flate.BestCompression + 3]sync.Pool // indexed by level+2

func (s *Store) compress(raw []byte) ([]byte, error) {
	lvl := s.opts.CompressionLevel
	var buf bytes.Buffer
	buf.Grow(len(raw)/3 + 64)
	p := &flateWriters[lvl+2]
	w, _ := p.Get().(*flate.Writer)
	if w == nil {
		var err error
		if w, err = flate.NewWriter(&buf, lvl); err != nil {
			return nil, err
		}
	} else {
		w.Reset(&buf)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	p.Put(w)
	return buf.Bytes(), nil
}

// decompress inflates stored content, refusing more than want bytes.
func decompress(content []byte, want int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(content))
	defer r.Close()
	b := bytes.NewBuffer(make([]byte, 0, min(want, 64<<20)))
	n, err := io.Copy(b, io.LimitReader(r, want+1))
	if err != nil {
		return nil, fmt.Errorf("%w: inflating content: %w", errCorrupt, err)
	}
	if n != want {
		return nil, fmt.Errorf("%w: content is %d bytes, record says %d", errCorrupt, n, want)
	}
	return b.Bytes(), nil
}

// quarantined loads a record and its raw content for actor.
func (s *Store) quarantined(id string, actor Actor) (*Record, []byte, error) {
	cid, err := ParseID(id)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	r, content, err := s.be.load(cid)
	if err != nil {
		return nil, nil, err
	}
	if !actor.allows(r) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, cid)
	}
	rec := r
	switch {
	case r.Quarantine == nil:
		return rec, nil, fmt.Errorf("%w: %s is %s", ErrNotQuarantined, cid, r.Status)
	case !r.Quarantine.HasContent(), content == nil:
		return rec, nil, fmt.Errorf("%w: %s", ErrGone, cid)
	}
	raw, err := decompress(content, rec.Quarantine.RawSize)
	return rec, raw, err
}

// Raw returns the quarantined message exactly as it was received (an .eml
// file). Errors: ErrNotFound, ErrNotQuarantined, ErrGone.
func (s *Store) Raw(id string, actor Actor) ([]byte, error) {
	_, raw, err := s.quarantined(id, actor)
	return raw, err
}

// View is what Show returns: the record, the parsed header and a safe
// text rendering of the body.
type View struct {
	Record *Record
	// Header lists the header fields in order, values decoded to UTF-8
	// and stripped of control characters.
	Header []HeaderField
	// Body is the text of the text/plain part, or the first text/html part
	// converted to text, without control characters and capped at
	// Options.RenderLimit bytes.
	Body string
	// BodyType is the media type Body was rendered from, "" if none.
	BodyType string
	// Truncated reports that Body was cut at the limit.
	Truncated bool
	// Parts lists the MIME leaf parts (type, file name, decoded size).
	Parts []Part
}

// HeaderField is one header field of a quarantined message.
type HeaderField struct{ Name, Value string }

// Part is one MIME leaf part of a quarantined message.
type Part struct {
	Type     string
	Filename string
	Size     int64
}

// Show returns the record with a parsed, safe rendering of the
// quarantined message for display. Errors: ErrNotFound,
// ErrNotQuarantined, ErrGone.
func (s *Store) Show(id string, actor Actor) (*View, error) {
	rec, raw, err := s.quarantined(id, actor)
	if err != nil {
		return nil, err
	}
	v := render(raw, s.opts.RenderLimit)
	v.Record = rec
	return v, nil
}

type releaseKey struct{}

// Releasing returns the log id of the message a DeliverFunc is releasing,
// or "" outside a release.
func Releasing(ctx context.Context) string {
	id, _ := ctx.Value(releaseKey{}).(string)
	return id
}

// ReleaseResult tells what Release did.
type ReleaseResult struct {
	// At and By are when and by whom the message was released, Reason
	// the reason given.
	At     time.Time
	By     string
	Reason string
	// Already is true when the message had been released before; it was
	// not delivered again.
	Already bool
}

// Release delivers a quarantined message to the next hop with its
// original envelope (the sender and the recipients not refused at RCPT)
// through Options.Deliver, below Options.ReleaseTrace's header field,
// then records the release on the record and sets its status to
// StatusReleased.
// Release is idempotent: a released message is never delivered again,
// also when Release is called concurrently for the same id; later calls
// return the first release with Already set. A failed delivery is
// returned wrapped in ErrDeliver and leaves the message unreleased.
//
// If the process dies after Deliver succeeded and before the release was
// recorded, a later Release delivers again (at-least-once).
func (s *Store) Release(ctx context.Context, id string, actor Actor) (ReleaseResult, error) {
	if s.opts.Deliver == nil {
		return ReleaseResult{}, ErrNoDeliver
	}
	cid, err := ParseID(id)
	if err != nil {
		return ReleaseResult{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	// One release per id at a time; others wait, then see it released.
	mine := make(chan struct{})
	for {
		other, busy := s.releasing.LoadOrStore(cid, mine)
		if !busy {
			break
		}
		select {
		case <-other.(chan struct{}):
		case <-ctx.Done():
			return ReleaseResult{}, ctx.Err()
		}
	}
	defer func() {
		s.releasing.Delete(cid)
		close(mine)
	}()
	// And one per id across the nodes sharing the store.
	unlock, err := s.be.lockRelease(ctx, cid)
	if err != nil {
		return ReleaseResult{}, err
	}
	defer unlock()

	rec, raw, err := s.quarantined(cid, actor)
	if rec != nil && rec.Quarantine.Released() && actor.allows(rec) {
		q := rec.Quarantine
		return ReleaseResult{At: q.ReleasedAt, By: q.ReleasedBy, Reason: q.ReleaseReason, Already: true}, nil
	}
	if err != nil {
		return ReleaseResult{}, err
	}
	var rcpts []string
	for _, rc := range rec.Recipients {
		if !rc.Refused {
			rcpts = append(rcpts, rc.Address)
		}
	}
	if len(rcpts) == 0 {
		return ReleaseResult{}, fmt.Errorf("%w: %s has no recipient to deliver to", ErrDeliver, cid)
	}
	now := s.opts.Now().UTC()
	if s.opts.ReleaseTrace != nil {
		raw = append([]byte(s.opts.ReleaseTrace(rec, now)), raw...)
	}
	if err := s.opts.Deliver(context.WithValue(ctx, releaseKey{}, cid), rec.Sender, rcpts, raw); err != nil {
		return ReleaseResult{}, fmt.Errorf("%w: %s: %w", ErrDeliver, cid, err)
	}
	res := ReleaseResult{At: now, By: actor.Name, Reason: actor.Reason}
	err = s.submit(context.WithoutCancel(ctx), &op{id: cid, update: func(r *Record) error {
		if r.Quarantine == nil {
			return fmt.Errorf("%w: %s", ErrNotQuarantined, cid)
		}
		r.Quarantine.ReleasedAt = res.At
		r.Quarantine.ReleasedBy = res.By
		r.Quarantine.ReleaseReason = actor.Reason
		r.Quarantine.ReleaseLearn = actor.Learn
		r.Status = StatusReleased
		return nil
	}})
	if err != nil {
		return res, fmt.Errorf("quarantine: %s delivered but the release was not recorded: %w", cid, err)
	}
	return res, nil
}

// Delete removes the quarantined content of id and records who deleted it
// and when; the log record stays. Deleting twice returns ErrGone.
func (s *Store) Delete(ctx context.Context, id string, actor Actor) error {
	cid, err := ParseID(id)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	now := s.opts.Now().UTC()
	return s.submit(ctx, &op{id: cid, dropContent: true, update: func(r *Record) error {
		switch {
		case !actor.allows(r):
			return fmt.Errorf("%w: %s", ErrNotFound, cid)
		case r.Quarantine == nil:
			return fmt.Errorf("%w: %s is %s", ErrNotQuarantined, cid, r.Status)
		case !r.Quarantine.HasContent():
			return fmt.Errorf("%w: %s", ErrGone, cid)
		}
		r.Quarantine.DeletedAt = now
		r.Quarantine.DeletedBy = actor.Name
		return nil
	}})
}
