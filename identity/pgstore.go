package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb"
)

// The LISTEN/NOTIFY channels: lock changes, and counters that crossed a
// threshold and start afresh on every node.
const (
	lockChannel  = "outguard_identity_locks"
	resetChannel = "outguard_identity_resets"
)

// pgStore is the PostgreSQL backend: the tables of migration
// 0002_identity (internal/pgdb/migrations), shared by every node of a
// fleet. Each lock change is announced on lockChannel in its transaction,
// so that the other nodes update their in-memory index.
type pgStore struct {
	pool *pgxpool.Pool
	node string
	// listenPID is the server process of the listening session, 0 when
	// there is none.
	listenPID atomic.Uint32
	// roundTimeout bounds a write round and the listener's keepalive
	// (pgdb.RoundTimeout): a connection that stopped answering fails
	// them instead of holding them for ever.
	roundTimeout time.Duration
}

func newPgStore(pool *pgxpool.Pool, node string) *pgStore {
	return &pgStore{pool: pool, node: node, roundTimeout: pgdb.RoundTimeout(pool)}
}

// splitKey returns the parts of a Target.key or windowKey.
func splitKey(key string) []string { return strings.Split(key, "\x00") }

// lockNotice is the payload of a notification on lockChannel.
type lockNotice struct {
	Node   string `json:"node"`
	Kind   string `json:"kind"`
	Domain string `json:"domain"`
	Name   string `json:"name"`
}

func (n lockNotice) key() string { return n.Kind + "\x00" + n.Domain + "\x00" + n.Name }

// resetNotice is the payload of a notification on resetChannel.
type resetNotice struct {
	Node     string `json:"node"`
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	Counters []int  `json:"counters"`
	At       int64  `json:"at"`
}

func (s *pgStore) getRecord(ctx context.Context, key string) (*record, error) {
	p := splitKey(key)
	var v []byte
	err := s.pool.QueryRow(ctx, "SELECT record FROM identity_locks WHERE domain = $1 AND kind = $2 AND name = $3", p[1], p[0], p[2]).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity: reading lock record: %w", err)
	}
	return decodeRecord(key, v)
}

func (s *pgStore) updateRecords(ctx context.Context, keys []string, fn func(string, *record) (*record, error)) error {
	if len(keys) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, key := range keys {
			p := splitKey(key)
			// The advisory lock serialises writers of one target across
			// nodes, also when it has no row yet.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 7))", p[0], p[1], p[2]); err != nil {
				return err
			}
			var r *record
			var v []byte
			err := tx.QueryRow(ctx, "SELECT record FROM identity_locks WHERE domain = $1 AND kind = $2 AND name = $3", p[1], p[0], p[2]).Scan(&v)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return err
			default:
				if r, err = decodeRecord(key, v); err != nil {
					return err
				}
			}
			put, err := fn(key, r)
			if err != nil {
				return err
			}
			if put == nil {
				continue
			}
			enc, err := json.Marshal(put)
			if err != nil {
				return err
			}
			settled := put.Settled || put.Lock == nil
			if _, err := tx.Exec(ctx, `
				INSERT INTO identity_locks (domain, kind, name, record, settled, node, updated_at)
				VALUES ($1, $2, $3, $4::jsonb, $5, $6, now())
				ON CONFLICT (domain, kind, name) DO UPDATE
				SET record = excluded.record, settled = excluded.settled, node = excluded.node, updated_at = now()`,
				p[1], p[0], p[2], string(enc), settled, s.node); err != nil {
				return err
			}
			note, _ := json.Marshal(lockNotice{Node: s.node, Kind: p[0], Domain: p[1], Name: p[2]})
			if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", lockChannel, string(note)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *pgStore) scanRecords(ctx context.Context, prefix string, fn func(string, *record) (bool, error)) error {
	q := `SELECT kind, domain, name, record FROM identity_locks`
	var args []any
	if prefix != "" {
		p := splitKey(prefix)
		q += " WHERE kind = $1"
		args = append(args, p[0])
		if len(p) > 2 {
			q += " AND domain = $2"
			args = append(args, p[1])
		}
	}
	q += ` ORDER BY kind COLLATE "C", domain COLLATE "C", name COLLATE "C"`
	return s.scan(ctx, q, args, fn)
}

// scanUnsettled calls fn on every record not yet settled: the index.
func (s *pgStore) scanUnsettled(ctx context.Context, fn func(string, *record) (bool, error)) error {
	return s.scan(ctx, "SELECT kind, domain, name, record FROM identity_locks WHERE NOT settled", nil, fn)
}

func (s *pgStore) scan(ctx context.Context, q string, args []any, fn func(string, *record) (bool, error)) error {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("identity: reading lock records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, domain, name string
		var v []byte
		if err := rows.Scan(&kind, &domain, &name, &v); err != nil {
			return err
		}
		key := kind + "\x00" + domain + "\x00" + name
		r, err := decodeRecord(key, v)
		if err != nil {
			return err
		}
		more, err := fn(key, r)
		if err != nil || !more {
			return err
		}
	}
	return rows.Err()
}

func (s *pgStore) loadWindows(keep func(string, []byte) bool) error {
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, "SELECT domain, identity, state FROM identity_windows WHERE node = $1", s.node)
	if err != nil {
		return err
	}
	var staleD, staleI []string
	for rows.Next() {
		var d, i string
		var v []byte
		if err := rows.Scan(&d, &i, &v); err != nil {
			rows.Close()
			return err
		}
		if !keep(d+"\x00"+i, v) {
			staleD, staleI = append(staleD, d), append(staleI, i)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return s.deleteWindows(ctx, staleD, staleI)
}

func (s *pgStore) deleteWindows(ctx context.Context, domains, idents []string) error {
	if len(domains) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `
		DELETE FROM identity_windows w USING unnest($1::text[], $2::text[]) AS d(domain, identity)
		WHERE w.domain = d.domain AND w.identity = d.identity AND w.node = $3`, domains, idents, s.node)
	return err
}

func (s *pgStore) writeWindows(puts map[string][]byte, dels []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.roundTimeout)
	defer cancel()
	var pd, pi, ps []string
	for k, v := range puts {
		p := splitKey(k)
		pd, pi, ps = append(pd, p[0]), append(pi, p[1]), append(ps, string(v))
	}
	var dd, di []string
	for _, k := range dels {
		p := splitKey(k)
		dd, di = append(dd, p[0]), append(di, p[1])
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(pd) > 0 {
			if _, err := tx.Exec(ctx, `
				INSERT INTO identity_windows (domain, identity, node, state, updated_at)
				SELECT d, i, $4, s::jsonb, now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(d, i, s)
				ON CONFLICT (domain, identity, node) DO UPDATE SET state = excluded.state, updated_at = now()`,
				pd, pi, ps, s.node); err != nil {
				return err
			}
		}
		if len(dd) > 0 {
			if _, err := tx.Exec(ctx, `
				DELETE FROM identity_windows w USING unnest($1::text[], $2::text[]) AS d(domain, identity)
				WHERE w.domain = d.domain AND w.identity = d.identity AND w.node = $3`, dd, di, s.node); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *pgStore) addWouldLock(wl *WouldLock, max int) error {
	ctx := context.Background()
	v, err := json.Marshal(wl)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO identity_wouldlocks (domain, identity, at, record, node)
			VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING id`,
			strings.ToLower(wl.Target.Domain), strings.ToLower(wl.Target.Name), wl.At, string(v), s.node).Scan(&id); err != nil {
			return err
		}
		wl.ID = uint64(id)
		_, err := tx.Exec(ctx, `
			DELETE FROM identity_wouldlocks
			WHERE id <= (SELECT id FROM identity_wouldlocks ORDER BY id DESC OFFSET $1 LIMIT 1)`, max)
		return err
	})
}

func (s *pgStore) scanWouldLocks(ctx context.Context, fn func(WouldLock) (bool, error)) error {
	rows, err := s.pool.Query(ctx, "SELECT id, record FROM identity_wouldlocks ORDER BY id DESC")
	if err != nil {
		return fmt.Errorf("identity: reading would-locks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return err
		}
		var wl WouldLock
		if err := json.Unmarshal(v, &wl); err != nil {
			return fmt.Errorf("identity: decoding would-lock %d: %w", id, err)
		}
		wl.ID = uint64(id)
		more, err := fn(wl)
		if err != nil || !more {
			return err
		}
	}
	return rows.Err()
}

// fleetInc is one increment of a node's count of an identity's counter
// in a slot. Counter numCounters is the recipients tried (the
// denominator of the refusal share).
type fleetInc struct {
	key     string // windowKey
	counter int
	slot    int64
	n       int64
	expires int64
}

// fleetQuery asks for the other nodes' count of key's counter in the
// slots after cutoff.
type fleetQuery struct {
	key     string
	counter int
	cutoff  int64
}

// fleetTotal answers a fleetQuery: the other nodes' count, and when the
// counter was last reset fleet-wide (0 never).
type fleetTotal struct {
	n     int64
	reset int64
}

// exchange writes this round's increments and reads the other nodes'
// totals for qs, in one round trip (one pipelined batch).
func (s *pgStore) exchange(ctx context.Context, incs []fleetInc, qs []fleetQuery) ([]fleetTotal, error) {
	b := &pgx.Batch{}
	if len(incs) > 0 {
		var d, i []string
		var c []int32
		var slot, n, exp []int64
		for _, in := range incs {
			p := splitKey(in.key)
			d, i = append(d, p[0]), append(i, p[1])
			c, slot, n, exp = append(c, int32(in.counter)), append(slot, in.slot), append(n, in.n), append(exp, in.expires)
		}
		b.Queue(`
			INSERT INTO identity_window_counts AS w (domain, identity, counter, slot, node, n, expires)
			SELECT d, i, c, s, $7, n, e FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(d, i, c, s, n, e)
			ON CONFLICT (domain, identity, counter, slot, node) DO UPDATE
			SET n = w.n + excluded.n, expires = greatest(w.expires, excluded.expires)`,
			d, i, c, slot, n, exp, s.node)
	}
	out := make([]fleetTotal, len(qs))
	if len(qs) > 0 {
		var d, i []string
		var c []int32
		var cut []int64
		for _, q := range qs {
			p := splitKey(q.key)
			d, i = append(d, p[0]), append(i, p[1])
			c, cut = append(c, int32(q.counter)), append(cut, q.cutoff)
		}
		b.Queue(`
			SELECT q.ord, coalesce(r.reset_at, 0),
				coalesce((SELECT sum(w.n) FROM identity_window_counts w
					WHERE w.domain = q.d AND w.identity = q.i AND w.counter = q.c
					AND w.slot > greatest(q.cut, coalesce(r.reset_at, 0)) AND w.node <> $5), 0)::bigint
			FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[]) WITH ORDINALITY AS q(d, i, c, cut, ord)
			LEFT JOIN identity_window_resets r ON r.domain = q.d AND r.identity = q.i AND r.counter = q.c`,
			d, i, c, cut, s.node)
	}
	if b.Len() == 0 {
		return out, nil
	}
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if len(incs) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("identity: writing window counts: %w", err)
		}
	}
	if len(qs) > 0 {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("identity: reading fleet counts: %w", err)
		}
		for rows.Next() {
			var ord, reset, n int64
			if err := rows.Scan(&ord, &reset, &n); err != nil {
				rows.Close()
				return nil, err
			}
			out[ord-1] = fleetTotal{n: n, reset: reset}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("identity: reading fleet counts: %w", err)
		}
	}
	return out, br.Close()
}

// resetCounters records that key's counters started afresh at at,
// fleet-wide.
func (s *pgStore) resetCounters(ctx context.Context, key string, counters []int, at int64) error {
	p := splitKey(key)
	c := make([]int32, len(counters))
	for i, v := range counters {
		c[i] = int32(v)
	}
	note, _ := json.Marshal(resetNotice{Node: s.node, Domain: p[0], Identity: p[1], Counters: counters, At: at})
	// The other nodes drop their local entries up to the reset at once
	// (notification), and any round reads it back (the table).
	_, err := s.pool.Exec(ctx, `
		WITH r AS (
			INSERT INTO identity_window_resets (domain, identity, counter, reset_at)
			SELECT $1, $2, c, $4 FROM unnest($3::int[]) AS u(c)
			ON CONFLICT (domain, identity, counter) DO UPDATE SET reset_at = greatest(identity_window_resets.reset_at, excluded.reset_at)
			RETURNING 1)
		SELECT pg_notify($5, $6) WHERE (SELECT count(*) FROM r) >= 0`,
		p[0], p[1], c, at, resetChannel, string(note))
	if err != nil {
		return fmt.Errorf("identity: recording a counter reset: %w", err)
	}
	return nil
}

// scanResets calls fn with every fleet-wide reset still inside the
// longest window, one notice per identity.
func (s *pgStore) scanResets(ctx context.Context, fn func(resetNotice)) error {
	rows, err := s.pool.Query(ctx, `
		SELECT domain, identity, reset_at, array_agg(counter::int)
		FROM identity_window_resets GROUP BY domain, identity, reset_at`)
	if err != nil {
		return err
	}
	var notes []resetNotice
	for rows.Next() {
		var n resetNotice
		if err := rows.Scan(&n.Domain, &n.Identity, &n.At, &n.Counters); err != nil {
			rows.Close()
			return err
		}
		notes = append(notes, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range notes {
		fn(n)
	}
	return nil
}

// expireCounts deletes the counts whose slots have left their windows at
// now, and resets older than the longest window.
func (s *pgStore) expireCounts(ctx context.Context, now int64) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM identity_window_counts WHERE expires < $1", now); err != nil {
		return fmt.Errorf("identity: expiring window counts: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM identity_window_resets WHERE reset_at < $1", now-int64(MaxWindow)); err != nil {
		return fmt.Errorf("identity: expiring counter resets: %w", err)
	}
	return nil
}

// listener receives what listen delivers.
type listener struct {
	// changed is called with the key of a lock another node changed.
	changed func(key string)
	// reset is called when another node reset counters of a window.
	reset func(n resetNotice)
	// resync reloads the whole index.
	resync func() error
	// fresh is told when the index was last known current.
	fresh func(time.Time)
	// failed is told why the connection was lost.
	failed func(error)
}

// listen delivers lock changes made by other nodes until ctx ends:
// changed is called with each changed key; resync is called after every
// (re)connection and every resyncEvery, and fresh with the time the index
// was last known to be current, after each notification or quiet wait.
// Connection failures are retried with backoff, reported to failed.
func (s *pgStore) listen(ctx context.Context, resyncEvery time.Duration, l listener) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, resyncEvery, l)
		if ctx.Err() != nil {
			return
		}
		l.failed(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *pgStore) listenOnce(ctx context.Context, resyncEvery time.Duration, l listener) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+lockChannel+"; LISTEN "+resetChannel); err != nil {
		return err
	}
	s.listenPID.Store(conn.PgConn().PID())
	defer s.listenPID.Store(0)
	// Whatever changed while this node was not listening is in the table.
	start := time.Now()
	if err := l.resync(); err != nil {
		return err
	}
	l.fresh(start)
	lastResync := start
	for {
		wait, cancel := context.WithTimeout(ctx, time.Second)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			switch n.Channel {
			case lockChannel:
				var note lockNotice
				if json.Unmarshal([]byte(n.Payload), &note) == nil && note.Node != s.node {
					l.changed(note.key())
				}
			case resetChannel:
				var note resetNotice
				if json.Unmarshal([]byte(n.Payload), &note) == nil && note.Node != s.node {
					l.reset(note)
				}
			}
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		// Quiet for a second: a round trip on the listening connection
		// proves that no notification sent before it is pending.
		at := time.Now()
		alive, cancel := context.WithTimeout(ctx, s.roundTimeout)
		_, err = conn.Exec(alive, "SELECT 1")
		cancel()
		if err != nil {
			return err
		}
		if time.Since(lastResync) >= resyncEvery {
			if err := l.resync(); err != nil {
				return err
			}
			lastResync = at
		}
		l.fresh(at)
	}
}
