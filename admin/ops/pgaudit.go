package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgAuditTimeout bounds the write of one audit entry: Record has no
// context of its own (the action it records is done).
const pgAuditTimeout = 10 * time.Second

// PgAudit is the audit trail of a fleet on PostgreSQL: the table
// admin_audit of migration 0204_admin_audit (internal/pgdb/migrations),
// shared by every node, which lists the entries of all of them. Its ids
// come from one sequence, so they order the trail across nodes (by the
// order the entries were written, whatever the nodes' clocks say). It is
// safe for concurrent use.
type PgAudit struct {
	pool *pgxpool.Pool
	node string
}

// OpenPgAudit returns the audit trail on pool; node names this node in
// the entries recorded without a node of their own. The migrations must
// have been applied (internal/pgdb.Migrate).
func OpenPgAudit(pool *pgxpool.Pool, node string) (*PgAudit, error) {
	if pool == nil {
		return nil, errors.New("admin: nil PostgreSQL pool")
	}
	return &PgAudit{pool: pool, node: node}, nil
}

// Record implements AuditStore. It keeps e's time, actor and node (this
// node's name when e has none), so that entries recorded elsewhere, a
// copied trail, keep theirs; the time is stored to the microsecond.
func (a *PgAudit) Record(e AuditEntry) (AuditEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgAuditTimeout)
	defer cancel()
	if e.Node == "" {
		e.Node = a.node
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	var id int64
	err := a.pool.QueryRow(ctx, `
		INSERT INTO admin_audit (at, node, actor, scope, action, target_kind, target_domain, target_name, reason, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		e.At, e.Node, e.Actor, e.Scope, e.Action, e.Target.Kind, e.Target.Domain, e.Target.Name, e.Reason, e.Detail).Scan(&id)
	if err != nil {
		return e, fmt.Errorf("admin: writing audit entry: %w", err)
	}
	e.ID = uint64(id)
	return e, nil
}

// List implements AuditStore, with the bbolt trail's filters: the
// domain compared without regard to case, Since on the entries' time,
// Before on the id.
func (a *PgAudit) List(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Domain != "" {
		where = append(where, "lower(target_domain) = lower("+arg(f.Domain)+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since))
	}
	if f.Before > 0 {
		// Ids past int64 are past every id the sequence gives.
		if f.Before <= uint64(1<<63-1) {
			where = append(where, "id < "+arg(int64(f.Before)))
		}
	}
	q := "SELECT id, at, node, actor, scope, action, target_kind, target_domain, target_name, reason, detail FROM admin_audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(auditLimit(f))
	rows, err := a.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("admin: listing the audit trail: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var (
			e  AuditEntry
			id int64
		)
		err := r.Scan(&id, &e.At, &e.Node, &e.Actor, &e.Scope, &e.Action, &e.Target.Kind, &e.Target.Domain, &e.Target.Name, &e.Reason, &e.Detail)
		e.ID, e.At = uint64(id), e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("admin: listing the audit trail: %w", err)
	}
	if out == nil {
		out = []AuditEntry{}
	}
	return out, nil
}
