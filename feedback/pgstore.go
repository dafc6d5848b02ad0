package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStore is the intake's store in the tables feedback_reports and
// feedback_index (migration 0201_feedback.sql) a fleet of nodes shares.
// The index's primary key makes a copy of a report stored by two nodes at
// once, or a second counted complaint about one transaction, lose at
// commit: put then answers as a duplicate.
type pgStore struct {
	pool *pgxpool.Pool
	node string
}

func (s *pgStore) lookup(ctx context.Context, digest, key string) (digestOf, keyOf string, err error) {
	rows, err := s.pool.Query(ctx, "SELECT key, id FROM feedback_index WHERE key = ANY($1)", [][]byte{[]byte(digest), []byte(key)})
	if err != nil {
		return "", "", err
	}
	var k []byte
	var id string
	_, err = pgx.ForEachRow(rows, []any{&k, &id}, func() error {
		switch {
		case string(k) == digest:
			digestOf = id
		case key != "" && string(k) == key:
			keyOf = id
		}
		return nil
	})
	return digestOf, keyOf, err
}

// errTaken ends put's transaction when the report's digest is taken.
var errTaken = errors.New("digest taken")

func (s *pgStore) put(ctx context.Context, res *Result, raw []byte) (digestOf string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The digest first: a copy stored by another node meanwhile
		// holds it, and this one stores nothing. ON CONFLICT waits for
		// a transaction inserting the same key to end.
		var inserted bool
		err := tx.QueryRow(ctx, `WITH i AS (
				INSERT INTO feedback_index (key, id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING true
			) SELECT EXISTS (SELECT FROM i)`, []byte(res.Digest), res.ID).Scan(&inserted)
		if err != nil {
			return err
		}
		if !inserted {
			if err := tx.QueryRow(ctx, "SELECT id FROM feedback_index WHERE key = $1", []byte(res.Digest)).Scan(&digestOf); err != nil {
				return err
			}
			return errTaken
		}
		if res.Counted && res.DedupKey != "" {
			err := tx.QueryRow(ctx, `WITH i AS (
					INSERT INTO feedback_index (key, id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING true
				) SELECT EXISTS (SELECT FROM i)`, []byte(res.DedupKey), res.ID).Scan(&inserted)
			if err != nil {
				return err
			}
			if !inserted {
				var id string
				if err := tx.QueryRow(ctx, "SELECT id FROM feedback_index WHERE key = $1", []byte(res.DedupKey)).Scan(&id); err != nil {
					return err
				}
				markDuplicate(res, id)
			}
		}
		meta, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO feedback_reports (id, received, counted, meta, raw, node)
			VALUES ($1, $2, $3, $4, $5, $6)`, res.ID, res.Received, res.Counted, meta, raw, s.node)
		return err
	})
	if errors.Is(err, errTaken) {
		return digestOf, nil
	}
	return "", err
}

func (s *pgStore) prune(ctx context.Context, cutoff time.Time, max int) (n int, more bool, err error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM feedback_reports WHERE id IN (
			SELECT id FROM feedback_reports WHERE received < $1 ORDER BY received LIMIT $2
		)`, cutoff, max)
	if err != nil {
		return 0, false, err
	}
	n = int(tag.RowsAffected())
	if n < max {
		return n, false, nil
	}
	err = s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM feedback_reports WHERE received < $1)", cutoff).Scan(&more)
	return n, more, err
}

func (s *pgStore) list(ctx context.Context, limit int, before string, counted *bool) (out []Result, next string, err error) {
	rows, err := s.pool.Query(ctx, `SELECT id, meta FROM feedback_reports
		WHERE ($1 = '' OR id < $1) AND ($2::boolean IS NULL OR counted = $2)
		ORDER BY id DESC LIMIT $3`, before, counted, limit+1)
	if err != nil {
		return nil, "", err
	}
	var id string
	var meta []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &meta}, func() error {
		var r Result
		if json.Unmarshal(meta, &r) != nil {
			return nil
		}
		r.ID = id
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}
