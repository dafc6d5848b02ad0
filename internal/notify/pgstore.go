package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// addLock is the key of the transaction advisory lock add holds, so that
// nodes adding at once keep the outbox within its bound ("notify" in
// ASCII).
const addLock int64 = 0x6e6f74696679

// pgStore is the outbox in the table notify_outbox (migration
// 0200_notify.sql), shared by the nodes of a fleet. Every node works it:
// claim leases one due item to this node with SELECT ... FOR UPDATE SKIP
// LOCKED, so two nodes never attempt one item at once, and a lease whose
// node died ends at its expiry, when another node takes the item.
type pgStore struct {
	pool *pgxpool.Pool
	node string
	log  *slog.Logger
}

func (s *pgStore) count(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM notify_outbox").Scan(&n)
	return n, err
}

func (s *pgStore) add(ctx context.Context, items []item, max int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", addLock); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM notify_outbox").Scan(&n); err != nil {
			return err
		}
		if n+len(items) > max {
			return ErrFull
		}
		for _, it := range items {
			v, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO notify_outbox (channel, item, created, next_attempt, node)
				VALUES ($1, $2, $3, $4, $5)`, it.Channel, v, it.Created, it.NextAttempt, s.node); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *pgStore) expire(ctx context.Context, cutoff, now time.Time) ([]item, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM notify_outbox
		WHERE created < $1 AND (lease_until IS NULL OR lease_until <= $2)
		RETURNING id, item`, cutoff, now)
	if err != nil {
		return nil, err
	}
	var out []item
	var id int64
	var v []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		var it item
		if err := json.Unmarshal(v, &it); err != nil {
			s.log.Error("notify: dropping unreadable outbox item", "id", id, "err", err)
			return nil
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

func (s *pgStore) claim(ctx context.Context, after int64, now time.Time, lease time.Duration, skip []string) (*claimed, error) {
	if skip == nil {
		skip = []string{} // <> ALL(NULL) matches nothing
	}
	var b [16]byte
	rand.Read(b[:])
	c := &claimed{token: hex.EncodeToString(b[:])}
	for {
		var v []byte
		err := s.pool.QueryRow(ctx, `WITH c AS (
				SELECT id FROM notify_outbox
				WHERE id > $1 AND next_attempt <= $2 AND (lease_until IS NULL OR lease_until <= $2)
					AND channel <> ALL($3)
				ORDER BY id LIMIT 1
				FOR UPDATE SKIP LOCKED
			)
			UPDATE notify_outbox o SET lease_node = $4, lease_token = $5, lease_until = $6
			FROM c WHERE o.id = c.id
			RETURNING o.id, o.item`,
			after, now, skip, s.node, c.token, now.Add(lease)).Scan(&c.pos, &v)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(v, &c.it); err != nil {
			s.log.Error("notify: dropping unreadable outbox item", "id", c.pos, "err", err)
			if err := s.done(ctx, c); err != nil {
				return nil, err
			}
			after = c.pos
			continue
		}
		return c, nil
	}
}

func (s *pgStore) done(ctx context.Context, c *claimed) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM notify_outbox WHERE id = $1 AND lease_token = $2", c.pos, c.token)
	if err == nil && tag.RowsAffected() == 0 {
		s.log.Warn("notify: an item's lease was taken over during its delivery; the receiver may get it twice", "event_id", c.it.Event.ID, "channel", c.it.Channel)
	}
	return err
}

func (s *pgStore) release(ctx context.Context, c *claimed) error {
	v, err := json.Marshal(c.it)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `UPDATE notify_outbox
		SET item = $3, next_attempt = $4, lease_node = NULL, lease_token = NULL, lease_until = NULL
		WHERE id = $1 AND lease_token = $2`, c.pos, c.token, v, c.it.NextAttempt)
	return err
}

func (s *pgStore) nextByChannel(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT channel, min(greatest(next_attempt, lease_until))
		FROM notify_outbox GROUP BY channel`)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	var ch string
	var t time.Time
	_, err = pgx.ForEachRow(rows, []any{&ch, &t}, func() error {
		out[ch] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return out, nil
}
