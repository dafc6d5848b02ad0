package ops

import (
	"context"
	"errors"

	"github.com/outguard/outguard/identity"
)

// Bulk actions on messages selected in the log.
const (
	BulkRelease = "release"
	BulkDelete  = "delete"
	BulkLock    = "lock"
)

// MaxBulk bounds the messages of one bulk action.
const MaxBulk = 1000

// BulkOrder is one action on several messages, with one reason.
type BulkOrder struct {
	// Action is BulkRelease, BulkDelete or BulkLock (lock the
	// identities of the messages, each once).
	Action string
	// IDs are the messages' log ids.
	IDs []string
	// Reason is required: every audit entry of the action names it.
	Reason string
	// Duration of the locks of BulkLock ("" permanent).
	Duration string
	Via      string
}

// BulkItem is what the action did to one message or identity.
type BulkItem struct {
	// ID is the message's log id; for BulkLock, the message the
	// identity was found in.
	ID string
	// Domain and Identity name the identity locked (BulkLock).
	Domain, Identity string
	// Done is set when the item changed; Already when it had been done
	// before (nothing changed, no audit entry); Err says why it failed.
	Done, Already bool
	Err           error
}

// Bulk applies one action to several messages for p. Each item goes
// through the single action (Release, Delete, Lock) with its scope
// check and its own audit entry naming the shared reason; an item that
// fails does not stop the others. The order itself fails (ErrBadRequest)
// without a reason, an action or ids, or with more than MaxBulk ids.
func (o *Ops) Bulk(ctx context.Context, p Principal, b BulkOrder) ([]BulkItem, error) {
	reason, err := checkReason(b.Reason, true)
	if err != nil {
		return nil, err
	}
	switch {
	case b.Action != BulkRelease && b.Action != BulkDelete && b.Action != BulkLock:
		return nil, Errorf(ErrBadRequest, "action %q: use release, delete or lock", b.Action)
	case len(b.IDs) == 0:
		return nil, Errorf(ErrBadRequest, "select at least one message")
	case len(b.IDs) > MaxBulk:
		return nil, Errorf(ErrBadRequest, "%d messages selected: at most %d at once", len(b.IDs), MaxBulk)
	}
	if b.Action == BulkLock {
		if _, err := lockDuration(b.Duration); err != nil {
			return nil, err
		}
	}
	var out []BulkItem
	locked := map[identity.Target]bool{}
	seen := map[string]bool{}
	for _, id := range b.IDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		it := BulkItem{ID: id}
		switch b.Action {
		case BulkRelease:
			res, err := o.Release(ctx, p, ReleaseOrder{ID: id, Reason: reason, RequireReason: true, Via: b.Via})
			it.Done, it.Already, it.Err = err == nil && !res.Already, res.Already, err
		case BulkDelete:
			res, err := o.Delete(ctx, p, id, reason, b.Via)
			it.Done, it.Already, it.Err = err == nil && !res.Already, res.Already, err
		case BulkLock:
			rec, err := o.Message(p, id)
			if err != nil {
				it.Err = err
				break
			}
			if rec.Identity == "" {
				it.Err = Errorf(ErrBadRequest, "message %s has no identity", rec.ID)
				break
			}
			t := identity.IdentityTarget(rec.Domain, rec.Identity)
			it.Domain, it.Identity = t.Domain, t.Name
			if locked[t] {
				continue // one lock per identity, from its first message
			}
			locked[t] = true
			_, err = o.Lock(ctx, p, LockOrder{Kind: string(identity.KindIdentity), Domain: t.Domain, Name: t.Name,
				Reason: reason, Duration: b.Duration, Via: b.Via})
			if errors.Is(err, identity.ErrAlreadyLocked) {
				it.Already = true
			} else {
				it.Done, it.Err = err == nil, err
			}
		}
		out = append(out, it)
	}
	return out, nil
}
