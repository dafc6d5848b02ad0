package quarantine

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/storecopy"
)

// The kinds of records outguard store copy takes from a node's bbolt file
// into the tables of 0100_quarantine.sql (docs/config-store.md, "Growing
// from one node"). Records keep their log ids; one already in the table
// (same domain, id and time) is left as it is.

// CopyLog is the message log: quarantine.log into quarantine_log, with
// the search columns the PostgreSQL store derives from each record. The
// rollups are not recounted from it: CopyRollups copies them as they are,
// which also keeps the counts of records retention removed.
func CopyLog() storecopy.Kind {
	days := &pgBackend{days: make(map[int64]bool)}
	return storecopy.Kind{
		Name:    "quarantine.log",
		Bucket:  string(bucketLog),
		Prepare: days.prepareCopy,
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if len(it.Key) != keyLen {
				return storecopy.Skip("malformed log key"), nil
			}
			id := keyID(it.Key)
			r, err := decodeRecord(id, it.Value)
			if err != nil {
				return storecopy.Skip("undecodable log record"), nil
			}
			var rows logRow
			rows.add(r, it.Value)
			var got []string
			res, err := e.Dst.Query(ctx, insertLog, rows.domain, rows.id, rows.ts, rows.status, rows.verdict, rows.usr, rows.identity,
				rows.msgid, rows.trace, rows.ip, rows.partial, rows.sender, rows.subject, rows.rcpts, rows.rec, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			for res.Next() {
				var s string
				if err := res.Scan(&s); err != nil {
					res.Close()
					return storecopy.Outcome{}, err
				}
				got = append(got, s)
			}
			if err := res.Err(); err != nil {
				return storecopy.Outcome{}, err
			}
			if len(got) == 0 {
				return storecopy.Outcome{State: storecopy.Present}, nil
			}
			if r.Quarantine != nil && r.Quarantine.Expired {
				// Retention removed its content on the node: the column
				// the PostgreSQL store keeps for that.
				if _, err := e.Dst.Exec(ctx, `UPDATE quarantine_log SET q_expired = true WHERE domain = $1 AND id = $2 AND ts = $3`,
					rows.domain[0], id, rows.ts[0]); err != nil {
					return storecopy.Outcome{}, err
				}
			}
			return storecopy.Outcome{State: storecopy.Copied}, nil
		},
	}
}

// CopyContent is the quarantined content: quarantine.msg (deflated raw
// messages) into quarantine_content, under the domain of each message's
// log record. Content whose log record is missing is skipped.
func CopyContent() storecopy.Kind {
	days := &pgBackend{days: make(map[int64]bool)}
	return storecopy.Kind{
		Name:    "quarantine.content",
		Bucket:  string(bucketMsg),
		Prepare: days.prepareCopy,
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if len(it.Key) != keyLen {
				return storecopy.Skip("malformed content key"), nil
			}
			id := keyID(it.Key)
			r, err := getRecord(e.Src, id)
			if errors.Is(err, ErrNotFound) {
				return storecopy.Skip("no log record"), nil
			}
			if err != nil {
				return storecopy.Skip("undecodable log record"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO quarantine_content (domain, id, ts, content) VALUES ($1, $2, $3, $4)
				ON CONFLICT DO NOTHING`, pgText(normValue(r.Domain, true)), id, idTime(id), it.Value)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// CopyRollups is the report counters: quarantine.rollup into
// quarantine_rollup, each counter with its count. A counter already in
// the table keeps its count (it is not added to).
func CopyRollups() storecopy.Kind {
	return storecopy.Kind{
		Name:   "quarantine.rollup",
		Bucket: string(bucketRollup),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if len(it.Key) < 7 || len(it.Value) != 8 {
				return storecopy.Skip("malformed rollup counter"), nil
			}
			r := parseRollup(string(it.Key))
			tag, err := e.Dst.Exec(ctx, `INSERT INTO quarantine_rollup (domain, gran, grp, class, bucket, key, n)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
				r.domain, r.gran, r.grp, r.class, r.bucket, r.key, int64(binary.BigEndian.Uint64(it.Value)))
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// prepareCopy creates the day partitions of a batch of log or content
// keys, as the store does before it writes.
func (b *pgBackend) prepareCopy(ctx context.Context, pool *pgxpool.Pool, batch []storecopy.Item) error {
	b.pool = pool
	var days []int64
	for _, it := range batch {
		if len(it.Key) == keyLen {
			days = append(days, dayNumber(idTime(keyID(it.Key))))
		}
	}
	return b.ensureDays(ctx, days)
}
