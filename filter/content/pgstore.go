package content

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStoreTimeout bounds one call of PgStore.
const pgStoreTimeout = 30 * time.Second

// PgStore keeps the overlay in the PostgreSQL database a fleet of nodes
// shares (store.backend postgres; migrations 0203_content_overlay.sql and
// 0208_content_overlay_nodes.sql). Each node saves its own lessons in its
// row of content_overlay_nodes, and its Learner scores with the sum of
// every node's row of the current generation (docs/content-model.md,
// "Several nodes"). It is a SharedStore.
type PgStore struct {
	Pool *pgxpool.Pool
	// Node names this node's row.
	Node string
}

var _ SharedStore = PgStore{}

// Load returns this node's saved overlay, or nil when it has none in the
// current generation.
func (s PgStore) Load() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	var out []byte
	err := s.Pool.QueryRow(ctx, `SELECT n.overlay FROM content_overlay_nodes n, content_overlay_generation g
		WHERE n.node = $1 AND n.generation = g.generation`, s.Node).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("content: postgres: %w", err)
	}
	return out, nil
}

// Save replaces this node's overlay, in the current generation; it
// returns once committed.
func (s PgStore) Save(data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `INSERT INTO content_overlay_nodes (node, overlay, generation, stamp)
		SELECT $1, $2, g.generation, nextval('content_overlay_stamp') FROM content_overlay_generation g
		ON CONFLICT (node) DO UPDATE SET overlay = excluded.overlay, generation = excluded.generation,
			stamp = excluded.stamp, updated_at = now()`, s.Node, data)
	if err != nil {
		return fmt.Errorf("content: postgres: %w", err)
	}
	return nil
}

// Others returns the overlays of the other nodes, in the current
// generation, whose stamp differs from known; the stamps of all of them;
// and the generation.
func (s PgStore) Others(known map[string]int64) (changed map[string][]byte, stamps map[string]int64, generation int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, "SELECT generation FROM content_overlay_generation").Scan(&generation); err != nil {
		return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
	}
	rows, err := tx.Query(ctx, "SELECT node, stamp FROM content_overlay_nodes WHERE node <> $1 AND generation = $2", s.Node, generation)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
	}
	stamps = map[string]int64{}
	var fetch []string
	for rows.Next() {
		var node string
		var stamp int64
		if err := rows.Scan(&node, &stamp); err != nil {
			return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
		}
		stamps[node] = stamp
		if old, ok := known[node]; !ok || old != stamp {
			fetch = append(fetch, node)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
	}
	changed = map[string][]byte{}
	if len(fetch) > 0 {
		rows, err := tx.Query(ctx, "SELECT node, overlay FROM content_overlay_nodes WHERE node = ANY($1)", fetch)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
		}
		for rows.Next() {
			var node string
			var data []byte
			if err := rows.Scan(&node, &data); err != nil {
				return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
			}
			changed[node] = data
		}
		if err := rows.Err(); err != nil {
			return nil, nil, 0, fmt.Errorf("content: postgres: %w", err)
		}
	}
	return changed, stamps, generation, nil
}

// ReplaceAll starts a new generation holding data as this node's overlay
// and no other node's, and returns it.
func (s PgStore) ReplaceAll(data []byte) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	var generation int64
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "UPDATE content_overlay_generation SET generation = generation + 1 RETURNING generation").Scan(&generation); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM content_overlay_nodes"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO content_overlay_nodes (node, overlay, generation, stamp)
			VALUES ($1, $2, $3, nextval('content_overlay_stamp'))`, s.Node, data, generation)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("content: postgres: %w", err)
	}
	return generation, nil
}
