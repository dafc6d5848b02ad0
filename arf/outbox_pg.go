package arf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// The outbox on PostgreSQL (OutboxOptions.Pool): one row per report in
// arf_outbox (internal/pgdb/migrations/0101_arf_outbox.sql), pending,
// sent or expired. Every node of the fleet runs a sender on the same
// table. A sender takes one due report at a time with FOR UPDATE SKIP
// LOCKED and marks it with a lease (lease_until, lease_node) before it
// delivers, so no other node takes it meanwhile; it records the outcome
// and clears the lease. A node that dies mid-delivery leaves its lease
// to run out, and another node then delivers the report: a report is
// delivered once across the fleet, or twice if a node died after the
// relay accepted it and before recording that (at least once, as on
// bbolt after a crash). Leases use each node's clock (Options.Now):
// keep the fleet's clocks in sync, well within the lease.

func (o *Outbox) initPG() error {
	if o.opts.Node == "" {
		o.opts.Node, _ = os.Hostname()
	}
	if o.opts.Lease <= 0 {
		o.opts.Lease = o.opts.SendTimeout + time.Minute
	}
	return o.refreshDepth(context.Background())
}

// refreshDepth sets the depth gauge to the fleet's pending reports.
func (o *Outbox) refreshDepth(ctx context.Context) error {
	var n int64
	if err := o.opts.Pool.QueryRow(ctx, `SELECT count(*) FROM arf_outbox WHERE state = 'pending'`).Scan(&n); err != nil {
		return fmt.Errorf("arf: outbox: %w", err)
	}
	o.metrics.depth.Set(float64(n))
	return nil
}

// PutPG writes the report in tx, unless its ID is already in the outbox
// (pending, sent or expired). It may run more than once (a retried
// transaction).
func (st *Staged) PutPG(ctx context.Context, tx pgx.Tx) error {
	st.added = false
	if st.o.opts.Pool == nil {
		return errors.New("arf: the outbox is on bbolt: use Put")
	}
	tag, err := tx.Exec(ctx, `INSERT INTO arf_outbox (id, state, to_addrs, raw, created, next_attempt, node)
		VALUES ($1, 'pending', $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		st.r.ID, st.r.To, st.r.Raw, st.r.Created.UTC(), st.o.opts.Now().UTC(), st.o.opts.Node)
	if err != nil {
		return err
	}
	st.added = tag.RowsAffected() == 1
	return nil
}

const entryColumns = `id, to_addrs, created, attempts, next_attempt, last_error, coalesce(expired_at, 'epoch'::timestamptz)`

func scanEntry(row pgx.Row) (Entry, error) {
	var e Entry
	err := row.Scan(&e.ID, &e.To, &e.Created, &e.Attempts, &e.NextAttempt, &e.LastError, &e.Expired)
	if e.Expired.Equal(time.Unix(0, 0)) {
		e.Expired = time.Time{}
	}
	return e, err
}

// roundPG is Round on PostgreSQL; several nodes run it at once.
func (o *Outbox) roundPG(ctx context.Context) (time.Time, error) {
	pool := o.opts.Pool
	if err := o.expireOldPG(ctx); err != nil {
		return time.Time{}, err
	}
	for ctx.Err() == nil {
		now := o.opts.Now().UTC()
		row := pool.QueryRow(ctx, `UPDATE arf_outbox SET lease_until = $2, lease_node = $3
			WHERE id = (SELECT id FROM arf_outbox
				WHERE state = 'pending' AND next_attempt <= $1 AND (lease_until IS NULL OR lease_until < $1)
				ORDER BY next_attempt, id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING `+entryColumns+`, raw`, now, now.Add(o.opts.Lease), o.opts.Node)
		var e Entry
		var raw []byte
		err := row.Scan(&e.ID, &e.To, &e.Created, &e.Attempts, &e.NextAttempt, &e.LastError, &e.Expired, &raw)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("arf: taking a report: %w", err)
		}
		e.Expired = time.Time{}
		if err := o.attemptPG(ctx, e, raw); err != nil {
			return time.Time{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	_, _ = pool.Exec(ctx, `DELETE FROM arf_outbox WHERE state = 'sent' AND sent_at < $1`, o.opts.Now().Add(-o.opts.MaxAge).UTC())
	if err := o.refreshDepth(ctx); err != nil {
		return time.Time{}, err
	}
	// The next report due here: a leased one when its lease runs out.
	var next *time.Time
	err := pool.QueryRow(ctx, `SELECT min(greatest(next_attempt, coalesce(lease_until, next_attempt)))
		FROM arf_outbox WHERE state = 'pending'`).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return *next, nil
}

// attemptPG delivers e, held under this node's lease, and records the
// outcome.
func (o *Outbox) attemptPG(ctx context.Context, e Entry, raw []byte) error {
	pool := o.opts.Pool
	sctx, cancel := context.WithTimeout(ctx, o.opts.SendTimeout)
	err := o.opts.Send(sctx, "", e.To, raw)
	cancel()
	// Recorded whatever ctx says: the outcome of a delivery is known.
	rctx := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		if derr := o.recordSentPG(ctx, e.ID); derr != nil {
			return fmt.Errorf("arf: recording delivery of %s: %w", e.ID, derr)
		}
		o.metrics.sent.Inc()
		return nil
	case ctx.Err() != nil:
		// Stopped: free the report for the next round, here or elsewhere.
		_, _ = pool.Exec(rctx, `UPDATE arf_outbox SET lease_until = NULL WHERE id = $1 AND lease_node = $2`, e.ID, o.opts.Node)
		return ctx.Err()
	case isPermanent(err):
		o.metrics.failed.Inc()
		e.Attempts++
		e.LastError = err.Error()
		return o.expirePG(rctx, e, "refused permanently: "+err.Error())
	}
	e.Attempts++
	e.LastError = err.Error()
	e.NextAttempt = o.opts.Now().Add(o.retry.Delay(e.Attempts))
	o.metrics.retried.Inc()
	o.opts.Logger.Warn("arf report delivery failed; will retry", "report_id", e.ID, "attempts", e.Attempts, "next_attempt", e.NextAttempt, "err", err)
	_, err = pool.Exec(rctx, `UPDATE arf_outbox SET attempts = $2, last_error = $3, next_attempt = $4, lease_until = NULL
		WHERE id = $1 AND state = 'pending'`, e.ID, e.Attempts, e.LastError, e.NextAttempt.UTC())
	if err != nil {
		return fmt.Errorf("arf: recording a failed delivery of %s: %w", e.ID, err)
	}
	return nil
}

// sentRetry is how often a node retries recording a delivered report
// while the database is out of reach: the report stays leased to it, and
// once its lease runs out another node would send it again, so the record
// is retried often, to land before the others' next round.
const sentRetry = 200 * time.Millisecond

// recordSentPG marks report id sent. While the database is out of reach
// it retries until it succeeds, or until ctx ends (the node stops): then
// it tries once more and gives up, and another node may send the report
// again once its lease runs out.
func (o *Outbox) recordSentPG(ctx context.Context, id string) error {
	rctx := context.WithoutCancel(ctx)
	for warned := false; ; {
		_, err := o.opts.Pool.Exec(rctx, `UPDATE arf_outbox SET state = 'sent', sent_at = $2, raw = NULL, lease_until = NULL
			WHERE id = $1 AND state = 'pending'`, id, o.opts.Now().UTC())
		if err == nil {
			if warned {
				o.opts.Logger.Info("arf report delivery recorded after the database came back", "report_id", id)
			}
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !warned {
			o.opts.Logger.Warn("arf report delivered but not recorded yet; retrying until the database answers", "report_id", id, "err", err)
			warned = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(sentRetry):
		}
	}
}

// expireOldPG moves the pending reports older than MaxAge, not held by a
// live lease, to the expired list.
func (o *Outbox) expireOldPG(ctx context.Context) error {
	now := o.opts.Now().UTC()
	why := "older than the maximum age " + o.opts.MaxAge.String()
	rows, err := o.opts.Pool.Query(ctx, `UPDATE arf_outbox SET state = 'expired', expired_at = $1, lease_until = NULL,
			last_error = CASE WHEN last_error = '' THEN $3 ELSE last_error END
		WHERE id IN (SELECT id FROM arf_outbox
			WHERE state = 'pending' AND created < $2 AND (lease_until IS NULL OR lease_until < $1)
			FOR UPDATE SKIP LOCKED)
		RETURNING `+entryColumns, now, now.Add(-o.opts.MaxAge), why)
	if err != nil {
		return fmt.Errorf("arf: expiring old reports: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) { return scanEntry(r) })
	if err != nil {
		return fmt.Errorf("arf: expiring old reports: %w", err)
	}
	for _, e := range entries {
		o.expired(e, why)
	}
	return nil
}

// expirePG moves e, held under this node's lease, to the expired list.
func (o *Outbox) expirePG(ctx context.Context, e Entry, why string) error {
	e.Expired = o.opts.Now()
	if e.LastError == "" {
		e.LastError = why
	}
	_, err := o.opts.Pool.Exec(ctx, `UPDATE arf_outbox SET state = 'expired', expired_at = $2, attempts = $3, last_error = $4, lease_until = NULL
		WHERE id = $1 AND state = 'pending'`, e.ID, e.Expired.UTC(), e.Attempts, e.LastError)
	if err != nil {
		return fmt.Errorf("arf: expiring %s: %w", e.ID, err)
	}
	o.expired(e, why)
	return nil
}

// expired counts, logs and announces an expired report.
func (o *Outbox) expired(e Entry, why string) {
	o.metrics.expired.Inc()
	o.opts.Logger.Error("arf report not delivered; kept in the expired list", "report_id", e.ID, "to", e.To, "attempts", e.Attempts, "reason", why, "last_error", e.LastError)
	if o.opts.OnExpire != nil {
		o.opts.OnExpire(e)
	}
}

func (o *Outbox) listPG(state string) ([]Entry, error) {
	rows, err := o.opts.Pool.Query(context.Background(), `SELECT `+entryColumns+` FROM arf_outbox WHERE state = $1 ORDER BY created, id`, state)
	if err != nil {
		return nil, fmt.Errorf("arf: outbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) { return scanEntry(r) })
	if err != nil {
		return nil, fmt.Errorf("arf: outbox: %w", err)
	}
	return out, nil
}

func (o *Outbox) requeuePG(id string) error {
	now := o.opts.Now().UTC()
	tag, err := o.opts.Pool.Exec(context.Background(), `UPDATE arf_outbox
		SET state = 'pending', created = $2, next_attempt = $2, expired_at = NULL, attempts = 0, lease_until = NULL
		WHERE id = $1 AND state = 'expired'`, id, now)
	if err != nil {
		return fmt.Errorf("arf: requeue %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("arf: no expired report %q", id)
	}
	o.metrics.depth.Inc()
	o.runner.Wake()
	return nil
}

func (o *Outbox) deleteExpiredPG(id string) error {
	_, err := o.opts.Pool.Exec(context.Background(), `DELETE FROM arf_outbox WHERE id = $1 AND state = 'expired'`, id)
	if err != nil {
		return fmt.Errorf("arf: deleting %s: %w", id, err)
	}
	return nil
}

func (o *Outbox) rawPG(id string) ([]byte, error) {
	var raw []byte
	err := o.opts.Pool.QueryRow(context.Background(), `SELECT raw FROM arf_outbox WHERE id = $1 AND state <> 'sent'`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && raw == nil) {
		return nil, fmt.Errorf("arf: no report %q in the outbox", id)
	}
	return raw, err
}
