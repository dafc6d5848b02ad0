package ops

import (
	"context"
	"errors"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// Message loads the log record id for p: ErrNotFound for what is not a
// log id or no record, ErrForbidden for another domain's.
func (o *Ops) Message(p Principal, id string) (*quarantine.Record, error) {
	if _, err := quarantine.ParseID(id); err != nil {
		return nil, Errorf(ErrNotFound, "message %q: not a log id", id)
	}
	rec, err := o.opts.Store.Get(id)
	if err != nil {
		return nil, err
	}
	if !p.Allows(rec.Domain) {
		return nil, Errorf(ErrForbidden, "message %s belongs to another administrative domain than your token's (%s)", rec.ID, p.Domain)
	}
	return rec, nil
}

func actor(p Principal) quarantine.Actor { return quarantine.Actor{Name: p.Name, Domain: p.Domain} }

// Show renders the stored content of rec, a record loaded by Message; nil
// and no error when its content is not (or no longer) stored.
func (o *Ops) Show(p Principal, rec *quarantine.Record) (*quarantine.View, error) {
	if err := o.allow(p, "message", rec.ID, rec.Domain); err != nil {
		return nil, err
	}
	if !rec.Quarantine.HasContent() {
		return nil, nil
	}
	v, err := o.opts.Store.Show(rec.ID, actor(p))
	if errors.Is(err, quarantine.ErrGone) {
		// deleted or expired since the record was read
		return nil, nil
	}
	return v, err
}

// Raw returns the stored message rec, a record loaded by Message.
func (o *Ops) Raw(p Principal, rec *quarantine.Record) ([]byte, error) {
	if err := o.allow(p, "message", rec.ID, rec.Domain); err != nil {
		return nil, err
	}
	return o.opts.Store.Raw(rec.ID, actor(p))
}

// Search searches the message log in p's scope.
func (o *Ops) Search(p Principal, q quarantine.Query) (quarantine.Page, error) {
	q.Scope = p.Domain
	page, err := o.opts.Store.Search(q)
	if err != nil {
		return page, err
	}
	mine := page.Records[:0:0]
	for _, rec := range page.Records {
		if p.Allows(rec.Domain) { // the store applies the scope; be sure
			mine = append(mine, rec)
		}
	}
	page.Records = mine
	return page, nil
}

// ErrNoSeries: the message store keeps no time series.
var ErrNoSeries = errors.New("the message store keeps no time series")

// Series returns the traffic series in p's scope.
func (o *Ops) Series(p Principal, q quarantine.SeriesQuery) ([]quarantine.SeriesPoint, error) {
	s, ok := o.opts.Store.(seriesStore)
	if !ok {
		return nil, ErrNoSeries
	}
	q.Scope = p.Domain
	return s.Series(q)
}

// ReportQuery is a report asked for by p.
type ReportQuery struct {
	GroupBy  quarantine.GroupBy
	Class    quarantine.Class
	From, To time.Time
	// Domain restricts the report to one domain; a domain-scoped
	// principal always gets its own (nothing for another domain).
	Domain string
	Limit  int
}

// ReportRow is a report group with its lock state.
type ReportRow struct {
	quarantine.ReportRow
	// Kind is the lock kind of the group (user or identity); "" for a
	// grouping that cannot be locked, or a group without key.
	Kind identity.Kind
	// Locked is set when the group's user or identity is locked now.
	Locked bool
}

// Report runs a report in p's scope and adds each group's lock state.
func (o *Ops) Report(ctx context.Context, p Principal, q ReportQuery) ([]ReportRow, error) {
	scope := q.Domain
	if !p.All() {
		if q.Domain != "" && !p.Allows(q.Domain) {
			return []ReportRow{}, nil
		}
		scope = p.Domain
	}
	rows, err := o.opts.Store.Report(quarantine.ReportQuery{GroupBy: q.GroupBy, Class: q.Class, From: q.From, To: q.To, Scope: scope, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]ReportRow, 0, len(rows))
	for _, row := range rows {
		if !p.Allows(row.Domain) {
			continue
		}
		r := ReportRow{ReportRow: row}
		if row.Key != "" {
			switch q.GroupBy {
			case quarantine.GroupIdentity:
				r.Kind = identity.KindIdentity
			case quarantine.GroupUser:
				r.Kind = identity.KindUser
			}
		}
		if r.Kind != "" {
			r.Locked = o.Locked(ctx, p, identity.Target{Kind: r.Kind, Domain: row.Domain, Name: row.Key})
		}
		out = append(out, r)
	}
	return out, nil
}

// Released is what a release did.
type Released struct {
	quarantine.ReleaseResult
	// ID is the message's log id.
	ID string
	// Learned is what teaching the content model that the message is
	// ham did; nil when it taught nothing (learning off, already
	// released, or the lesson failed: logged).
	Learned *LearnResult
}

// ReleaseOrder is a release asked for by a principal.
type ReleaseOrder struct {
	// ID is the message's log id.
	ID string
	// Reason says why, for the audit trail: one line; required when
	// RequireReason is set (the console asks for one).
	Reason        string
	RequireReason bool
	// Learn teaches the content model that the message is ham ("release
	// and don't block this kind again"); nothing when learning is off.
	Learn bool
	// Via names the front end in the audit entry ("" for the API).
	Via string
}

// Release releases the quarantined message of req for p to the next hop,
// writes the audit entry (with the reason, and whether the content model
// was taught) and, when asked, teaches the content model that it is ham.
// A second release delivers nothing and writes nothing (Already).
func (o *Ops) Release(ctx context.Context, p Principal, req ReleaseOrder) (Released, error) {
	reason, err := checkReason(req.Reason, req.RequireReason)
	if err != nil {
		return Released{}, err
	}
	rec, err := o.Message(p, req.ID)
	if err != nil {
		return Released{}, err
	}
	learn := req.Learn && o.opts.Teacher != nil
	a := actor(p)
	a.Reason, a.Learn = reason, learn
	res, err := o.opts.Store.Release(ctx, rec.ID, a)
	if err != nil {
		return Released{}, err
	}
	out := Released{ReleaseResult: res, ID: rec.ID}
	if res.Already {
		return out, nil
	}
	detail := ""
	if learn {
		detail = "and learn as ham"
	}
	o.record(p, AuditRelease, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, reason, detail, req.Via)
	if learn {
		// "Don't block this kind again": the message was not spam.
		why := "released"
		if reason != "" {
			why = "released: " + reason
		}
		l, err := o.LearnStored(ctx, p, rec.ID, false, clipReason(why), req.Via)
		if err != nil {
			o.log.Info("admin: released message not learnt", "id", rec.ID, "err", err)
		} else {
			out.Learned = &l
		}
	}
	return out, nil
}

// clipReason bounds a reason built from another one.
func clipReason(s string) string {
	if len(s) > maxReasonLength {
		s = s[:maxReasonLength]
	}
	return s
}

// Deleted is what a deletion did.
type Deleted struct {
	ID string
	// Already is set when the content had been deleted before: nothing
	// changed, and At and By say when and by whom.
	Already bool
	At      time.Time
	By      string
}

// Delete deletes the quarantined content of message id for p and writes
// the audit entry; deleting it again changes nothing (Already).
func (o *Ops) Delete(ctx context.Context, p Principal, id, reason, via string) (Deleted, error) {
	rec, err := o.Message(p, id)
	if err != nil {
		return Deleted{}, err
	}
	if q := rec.Quarantine; q != nil && !q.DeletedAt.IsZero() {
		return Deleted{ID: rec.ID, Already: true, At: q.DeletedAt.UTC(), By: q.DeletedBy}, nil
	}
	if err := o.opts.Store.Delete(ctx, rec.ID, actor(p)); err != nil {
		return Deleted{}, err
	}
	o.record(p, AuditDelete, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, reason, "", via)
	return Deleted{ID: rec.ID}, nil
}
