package content

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStoreTimeout bounds one Load or Save of PgStore.
const pgStoreTimeout = 30 * time.Second

// PgStore keeps the overlay in the table content_overlay of the
// PostgreSQL database a fleet of nodes shares (store.backend postgres,
// migration 0203_content_overlay.sql), so that a node that starts, or
// replaces another, scores with what the fleet learnt. Each Save replaces
// the row: a Learner loads the overlay only when it is created, so when
// two running nodes learn, the last one to save wins until the others
// restart (docs/content-model.md).
type PgStore struct {
	Pool *pgxpool.Pool
	// Node is recorded as the node that saved the overlay last.
	Node string
}

var _ Store = PgStore{}

// Load returns the saved overlay, or nil when there is none.
func (s PgStore) Load() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	var out []byte
	err := s.Pool.QueryRow(ctx, "SELECT overlay FROM content_overlay WHERE name = 'overlay'").Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("content: postgres: %w", err)
	}
	return out, nil
}

// Save replaces the saved overlay; it returns once committed.
func (s PgStore) Save(data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgStoreTimeout)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `INSERT INTO content_overlay (name, overlay, node) VALUES ('overlay', $1, $2)
		ON CONFLICT (name) DO UPDATE SET overlay = excluded.overlay, node = excluded.node, updated_at = now()`, data, s.Node)
	if err != nil {
		return fmt.Errorf("content: postgres: %w", err)
	}
	return nil
}
