package admin

import (
	"context"
	"errors"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// The console's changes, done with the API's own checks (target and
// scope, reason, duration) and written to the same audit trail.

// lock locks kind/domain/name for the principal.
func (a *API) consoleLock(ctx context.Context, pr Principal, kind, domain, name, reason, duration, txID string) (identity.Lock, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return identity.Lock{}, err
	}
	var d time.Duration
	if duration != "" {
		d, err = ParseDuration(duration)
		if err != nil || d <= 0 || d > maxLockDuration {
			return identity.Lock{}, errorf(ErrBadRequest, "duration %q: use a positive duration like 90m, 12h or 7d (leave it empty for a permanent lock)", duration)
		}
	}
	t, err := a.target(kind, domain, name, pr)
	if err != nil {
		return identity.Lock{}, err
	}
	if txID != "" {
		if _, err := quarantine.ParseID(txID); err != nil {
			return identity.Lock{}, errorf(ErrBadRequest, "message %q: not a log id", txID)
		}
		// The message that prompted the lock, named in the reason so
		// that the lock's history links to it.
		if len(reason)+len(txID)+12 <= maxReasonLength {
			reason += " (message " + txID + ")"
		}
	}
	l, err := a.opts.Locks.Lock(ctx, identity.LockRequest{Target: t, Reason: reason, Actor: pr.Name, Duration: d})
	if err != nil {
		return identity.Lock{}, err
	}
	detail := "permanent"
	if d > 0 {
		detail = "for " + d.String() + " until " + l.Expires.UTC().Format(time.RFC3339)
	}
	a.record(pr, AuditLock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, detail+"; console")
	if txID != "" {
		// Like the API's lock with a message_id: the message that
		// prompted the lock is spam.
		a.learnFromLock(ctx, pr, txID)
	}
	return l, nil
}

// consoleUnlock lifts the lock on kind/domain/name.
func (a *API) consoleUnlock(ctx context.Context, pr Principal, kind, domain, name, reason string) (identity.Lock, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return identity.Lock{}, err
	}
	t, err := a.target(kind, domain, name, pr)
	if err != nil {
		return identity.Lock{}, err
	}
	l, err := a.opts.Locks.Unlock(ctx, t, pr.Name, reason)
	if err != nil {
		return identity.Lock{}, err
	}
	a.record(pr, AuditUnlock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, reason, "console")
	return l, nil
}

// messageByID loads a message the principal may see: 404 for no such
// record, 403 for another domain's.
func (a *API) messageByID(id string, pr Principal) (*quarantine.Record, quarantine.Actor, error) {
	if _, err := quarantine.ParseID(id); err != nil {
		return nil, quarantine.Actor{}, errorf(ErrNotFound, "message %q: not a log id", id)
	}
	rec, err := a.opts.Store.Get(id)
	if err != nil {
		return nil, quarantine.Actor{}, err
	}
	if !pr.Allows(rec.Domain) {
		return nil, quarantine.Actor{}, errorf(ErrForbidden, "message %s belongs to another administrative domain than your token's (%s)", rec.ID, pr.Domain)
	}
	return rec, quarantine.Actor{Name: pr.Name, Domain: pr.Domain}, nil
}

// consoleRelease releases a quarantined message and, like the API's
// release, teaches the content model that it is ham; learned is what that
// did, nil when it taught nothing.
func (a *API) consoleRelease(ctx context.Context, pr Principal, id string) (res quarantine.ReleaseResult, learned *LearnResult, err error) {
	rec, actor, err := a.messageByID(id, pr)
	if err != nil {
		return quarantine.ReleaseResult{}, nil, err
	}
	res, err = a.opts.Store.Release(ctx, rec.ID, actor)
	if err != nil {
		return res, nil, err
	}
	if !res.Already {
		a.record(pr, AuditRelease, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, "", "console")
		learned = a.learnAfterRelease(ctx, pr, rec.ID)
	}
	return res, learned, nil
}

// consoleDelete deletes a quarantined message's content.
func (a *API) consoleDelete(ctx context.Context, pr Principal, id string) error {
	rec, actor, err := a.messageByID(id, pr)
	if err != nil {
		return err
	}
	if err := a.opts.Store.Delete(ctx, rec.ID, actor); err != nil {
		return err
	}
	a.record(pr, AuditDelete, AuditTarget{Kind: "message", Domain: rec.Domain, Name: rec.ID}, "", "console")
	return nil
}

// seriesStore is the optional time-series side of the message store
// (quarantine.Store has it) for the overview chart.
type seriesStore interface {
	Series(q quarantine.SeriesQuery) ([]quarantine.SeriesPoint, error)
}

var errNoSeries = errors.New("the message store keeps no time series")

func (a *API) series(q quarantine.SeriesQuery) ([]quarantine.SeriesPoint, error) {
	s, ok := a.opts.Store.(seriesStore)
	if !ok {
		return nil, errNoSeries
	}
	return s.Series(q)
}
