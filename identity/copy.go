package identity

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/outguard/outguard/internal/storecopy"
)

// The kinds of records outguard store copy takes from a node's bbolt file
// into the tables of 0002_identity.sql (docs/config-store.md, "Growing
// from one node").

// CopyLocks is the locks with their history and evidence: identity_locks,
// one record per target, into the table of the same name. A target that
// already has a record in the table keeps it. Each copied lock is
// announced to running nodes as a lock change is.
func CopyLocks() storecopy.Kind {
	return storecopy.Kind{
		Name:   "identity.locks",
		Bucket: string(bucketLocks),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			p := splitKey(string(it.Key))
			if len(p) != 3 {
				return storecopy.Skip("malformed lock key"), nil
			}
			r, err := decodeRecord(string(it.Key), it.Value)
			if err != nil {
				return storecopy.Skip("undecodable lock record"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO identity_locks (domain, kind, name, record, settled, node, updated_at)
				VALUES ($1, $2, $3, $4::jsonb, $5, $6, now()) ON CONFLICT DO NOTHING`,
				p[1], p[0], p[2], string(it.Value), r.Settled || r.Lock == nil, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			if tag.RowsAffected() > 0 {
				note, _ := json.Marshal(lockNotice{Node: e.Node, Kind: p[0], Domain: p[1], Name: p[2]})
				if _, err := e.Dst.Exec(ctx, "SELECT pg_notify($1, $2)", lockChannel, string(note)); err != nil {
					return storecopy.Outcome{}, err
				}
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// CopyWindows is the automatic-lock windows: identity_windows into the
// table of the same name, as the window state of the node the copy is
// attributed to (node_name of its configuration). That node counts them
// when it starts on PostgreSQL; the other nodes see only what it counts
// from then on. A state the node would not load is skipped.
func CopyWindows() storecopy.Kind {
	return storecopy.Kind{
		Name:   "identity.windows",
		Bucket: string(bucketWindows),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			p := splitKey(string(it.Key))
			if len(p) != 2 {
				return storecopy.Skip("malformed window key"), nil
			}
			var w window
			if err := json.Unmarshal(it.Value, &w); err != nil {
				return storecopy.Skip("undecodable window state"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO identity_windows (domain, identity, node, state, updated_at)
				VALUES ($1, $2, $3, $4::jsonb, now()) ON CONFLICT DO NOTHING`, p[0], p[1], e.Node, string(it.Value))
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// CopyWouldLocks is the "would have locked" records of monitor mode:
// identity_wouldlocks into the table of the same name, in the order they
// were made. One of the same identity and time already in the table is
// left as it is. The nodes keep their own bound (the oldest past it go
// at the next record).
func CopyWouldLocks() storecopy.Kind {
	return storecopy.Kind{
		Name:   "identity.wouldlocks",
		Bucket: string(bucketWouldLocks),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			var wl WouldLock
			if err := json.Unmarshal(it.Value, &wl); err != nil {
				return storecopy.Skip("undecodable would-lock"), nil
			}
			domain, name := strings.ToLower(wl.Target.Domain), strings.ToLower(wl.Target.Name)
			tag, err := e.Dst.Exec(ctx, `INSERT INTO identity_wouldlocks (domain, identity, at, record, node)
				SELECT $1, $2, $3, $4::jsonb, $5
				WHERE NOT EXISTS (SELECT FROM identity_wouldlocks WHERE domain = $1 AND identity = $2 AND at = $3)`,
				domain, name, wl.At, string(it.Value), e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
