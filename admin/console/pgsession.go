package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgSessions keeps the sessions of a fleet in PostgreSQL: the table
// console_sessions of migration 0205_console_sessions
// (internal/pgdb/migrations). A session started on one node is valid on
// every node, and its end (sign-out, expiry, a changed credential, the
// bound) ends it on all of them. The table keys the SHA-256 hash of the
// session's token, never the token. Times are the nodes' clocks: keep
// them in sync (NTP).
type pgSessions struct {
	pool   *pgxpool.Pool
	node   string
	idle   time.Duration
	maxAge time.Duration
	max    int

	mu     sync.Mutex
	lastGC time.Time
}

var _ sessionStore = (*pgSessions)(nil)

func newPgSessions(pool *pgxpool.Pool, node string, idle, maxAge time.Duration, max int) *pgSessions {
	return &pgSessions{pool: pool, node: node, idle: idle, maxAge: maxAge, max: max}
}

// tokenHash is the key of the session whose token is id.
func tokenHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// gcDue reports whether this node should drop the expired sessions: at
// most once a minute, or when the table is full.
func (s *pgSessions) gcDue(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastGC) < time.Minute {
		return false
	}
	s.lastGC = now
	return true
}

// create stores x under a transaction-scoped advisory lock, so that the
// nodes signing users in at once keep the bound between them.
func (s *pgSessions) create(ctx context.Context, x *session) error {
	now := x.created
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('outguard console sessions', 0))"); err != nil {
			return err
		}
		expire := func() error {
			_, err := tx.Exec(ctx, "DELETE FROM console_sessions WHERE seen < $1 OR created < $2", now.Add(-s.idle), now.Add(-s.maxAge))
			return err
		}
		if s.gcDue(now) {
			if err := expire(); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM console_sessions").Scan(&n); err != nil {
			return err
		}
		if n >= s.max {
			if err := expire(); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				DELETE FROM console_sessions WHERE token_hash IN (
					SELECT token_hash FROM console_sessions ORDER BY seen, created LIMIT greatest((SELECT count(*) FROM console_sessions) - $1 + 1, 0))`,
				s.max); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO console_sessions (token_hash, csrf, name, domain, account, credential, created, seen, node)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
			tokenHash(x.id), x.csrf, x.p.Name, x.p.Domain, x.cred.account, x.cred.sum, now, s.node)
		return err
	})
}

// get marks the session seen in the statement that checks it is live:
// one round trip per request.
func (s *pgSessions) get(ctx context.Context, id string, now time.Time) (session, bool, error) {
	if id == "" {
		return session{}, false, nil
	}
	x := session{id: id}
	err := s.pool.QueryRow(ctx, `
		UPDATE console_sessions SET seen = greatest(seen, $2)
		WHERE token_hash = $1 AND seen >= $3 AND created >= $4
		RETURNING csrf, name, domain, account, credential, created, seen`,
		tokenHash(id), now, now.Add(-s.idle), now.Add(-s.maxAge)).
		Scan(&x.csrf, &x.p.Name, &x.p.Domain, &x.cred.account, &x.cred.sum, &x.created, &x.seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, fmt.Errorf("admin console: reading the session: %w", err)
	}
	return x, true, nil
}

func (s *pgSessions) remove(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM console_sessions WHERE token_hash = $1", tokenHash(id)); err != nil {
		return fmt.Errorf("admin console: ending the session: %w", err)
	}
	return nil
}

func (s *pgSessions) endStale(ctx context.Context, name string, account bool, cur string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM console_sessions WHERE name = $1 AND account = $2 AND credential <> $3", name, account, cur); err != nil {
		return fmt.Errorf("admin console: ending sessions of %s: %w", name, err)
	}
	return nil
}

func (s *pgSessions) setFlash(ctx context.Context, id, msg string, isErr bool) error {
	if _, err := s.pool.Exec(ctx, "UPDATE console_sessions SET flash = $2, flash_error = $3 WHERE token_hash = $1", tokenHash(id), msg, isErr); err != nil {
		return fmt.Errorf("admin console: keeping a notice: %w", err)
	}
	return nil
}

// takeFlash writes only when there is a notice to clear.
func (s *pgSessions) takeFlash(ctx context.Context, id string) (string, bool, error) {
	var (
		msg   string
		isErr bool
	)
	err := s.pool.QueryRow(ctx, `
		UPDATE console_sessions c SET flash = '', flash_error = false
		FROM (SELECT flash, flash_error FROM console_sessions WHERE token_hash = $1 AND flash <> '' FOR UPDATE) old
		WHERE c.token_hash = $1
		RETURNING old.flash, old.flash_error`, tokenHash(id)).Scan(&msg, &isErr)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("admin console: reading a notice: %w", err)
	}
	return msg, isErr, nil
}
