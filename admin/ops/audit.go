package ops

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketAudit holds the audit trail: big-endian sequence number to JSON
// AuditEntry.
var bucketAudit = []byte("admin_audit")

// Audit actions.
const (
	AuditLock     = "lock"
	AuditUnlock   = "unlock"
	AuditRelease  = "release"
	AuditDelete   = "delete"
	AuditFeedback = "feedback"
	AuditReload   = "reload"
	// AuditLearn records a message taught to the content model;
	// AuditModel a change of the whole overlay (import, reset).
	AuditLearn = "learn"
	AuditModel = "model"
	// AuditConfirm records a campaign confirmed as spam; AuditUnconfirm a
	// confirmation withdrawn (docs/campaigns.md).
	AuditConfirm   = "confirm"
	AuditUnconfirm = "unconfirm"
	// AuditLockout records a client address or an account locked out
	// of signing in after repeated failures
	// (docs/config-admin.md#sign-in-throttling).
	AuditLockout = "lockout"
)

// AuditActions are the audit actions, in the order the console offers
// them as a filter.
var AuditActions = []string{AuditLock, AuditUnlock, AuditNotify, AuditRelease, AuditDelete, AuditLearn, AuditModel, AuditFeedback, AuditReload, AuditConfirm, AuditUnconfirm, AuditLockout}

// AuditTarget is what an audited action applied to.
type AuditTarget struct {
	// Kind is user, identity, message, feedback, upload, model, campaign
	// or config.
	Kind string `json:"kind"`
	// Domain is the administrative domain of the object ("" for
	// config-wide actions such as reload).
	Domain string `json:"domain,omitempty"`
	// Name is the user, the identity, or the message's log id.
	Name string `json:"name,omitempty"`
}

// AuditEntry is one administrative action, written after it succeeded.
type AuditEntry struct {
	// ID orders the trail; it increases with every entry.
	ID uint64    `json:"id"`
	At time.Time `json:"at"`
	// Actor is the token's name; Scope its scope ("all" or a domain).
	Actor  string      `json:"actor"`
	Scope  string      `json:"scope"`
	Action string      `json:"action"`
	Target AuditTarget `json:"target"`
	Reason string      `json:"reason,omitempty"`
	// Detail holds what else matters: a lock's duration, a release
	// already done, the feedback's attribution.
	Detail string `json:"detail,omitempty"`
	// Node is the node that recorded the entry (node_name); "" in
	// entries written before nodes were named.
	Node string `json:"node,omitempty"`
}

// AuditStore keeps the audit trail: the bucket admin_audit (Audit) on
// bbolt, the table admin_audit (PgAudit) shared by a fleet on PostgreSQL.
// Both list alike; a store is safe for concurrent use.
type AuditStore interface {
	// Record appends e as it is (its time, actor and node kept), sets
	// its ID, which orders the trail, and returns it.
	Record(e AuditEntry) (AuditEntry, error)
	// List returns the entries matching f, newest (highest ID) first.
	List(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

var (
	_ AuditStore = (*Audit)(nil)
	_ AuditStore = (*PgAudit)(nil)
)

// AuditFilter selects audit entries. Zero fields select everything.
type AuditFilter struct {
	Action string
	Actor  string
	// Domain keeps entries whose target is in that domain.
	Domain string
	// Since keeps entries at or after it.
	Since time.Time
	// Before continues a listing: entries with an ID below it.
	Before uint64
	// Limit bounds the result, newest first; default 100, at most 1000.
	Limit int
}

// Audit is the audit trail in a node's bbolt file. It is safe for
// concurrent use.
type Audit struct {
	db *bolt.DB
}

// OpenAudit creates the audit bucket if needed.
func OpenAudit(db *bolt.DB) (*Audit, error) {
	if db == nil {
		return nil, errors.New("admin: nil database")
	}
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketAudit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("admin: creating audit bucket: %w", err)
	}
	return &Audit{db: db}, nil
}

// Record appends e, setting its ID, and returns it.
func (a *Audit) Record(e AuditEntry) (AuditEntry, error) {
	err := a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(auditKey(seq), v)
	})
	if err != nil {
		return e, fmt.Errorf("admin: writing audit entry: %w", err)
	}
	return e, nil
}

func auditKey(id uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, id)
	return k
}

// Audit listing limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// auditLimit is f's limit with its default and bound applied.
func auditLimit(f AuditFilter) int {
	if f.Limit <= 0 {
		return DefaultAuditLimit
	}
	return min(f.Limit, MaxAuditLimit)
}

// List returns the entries matching f, newest first.
func (a *Audit) List(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	limit := auditLimit(f)
	out := []AuditEntry{}
	err := a.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if f.Before > 0 {
			if sk, _ := c.Seek(auditKey(f.Before)); sk == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil; k, v = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("admin: decoding audit entry %x: %w", k, err)
			}
			if !f.Since.IsZero() && e.At.Before(f.Since) {
				break
			}
			if (f.Action != "" && e.Action != f.Action) ||
				(f.Actor != "" && e.Actor != f.Actor) ||
				(f.Domain != "" && !strings.EqualFold(e.Target.Domain, f.Domain)) {
				continue
			}
			out = append(out, e)
			if len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// record writes an audit entry for an action that succeeded; via names
// the front end ("console"), "" for the API, and is appended to the
// detail. A failure to record is logged, not returned: the action is
// done.
func (o *Ops) record(p Principal, action string, target AuditTarget, reason, detail, via string) {
	if via != "" {
		if detail != "" {
			detail += "; "
		}
		detail += via
	}
	scope := ScopeAll
	if !p.All() {
		scope = p.Domain
	}
	_, err := o.audit.Record(AuditEntry{At: o.now().UTC(), Actor: p.Name, Scope: scope, Action: action,
		Target: target, Reason: reason, Detail: detail, Node: o.opts.Node})
	if err != nil {
		o.log.Error("admin: audit trail", "action", action, "target", target.Name, "err", err)
		o.metrics.auditErrors.Inc()
	}
}

// Audit lists the audit trail for p: a domain-scoped principal sees the
// entries of its domain only (none when it asks for another domain).
func (o *Ops) Audit(ctx context.Context, p Principal, f AuditFilter) ([]AuditEntry, error) {
	if !p.All() {
		if f.Domain != "" && !p.Allows(f.Domain) {
			return []AuditEntry{}, nil
		}
		f.Domain = p.Domain
	}
	return o.audit.List(ctx, f)
}
