package quarantine

import (
	"context"
	"encoding/binary"
	"errors"

	"github.com/jackc/pgx/v5"
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
		Name:      "quarantine.log",
		Bucket:    string(bucketLog),
		Prepare:   days.prepareCopy,
		CopyBatch: copyLogBatch,
	}
}

// copyLogBatch writes a batch of log records with the store's own
// multi-row INSERT, which skips an id already in the table.
func copyLogBatch(ctx context.Context, e storecopy.Env, batch []storecopy.Item) ([]storecopy.Outcome, error) {
	outs := make([]storecopy.Outcome, len(batch))
	var rows logRow
	at := make(map[string]int, len(batch)) // id -> index in batch
	expired := make(map[string]bool)
	for i, it := range batch {
		if len(it.Key) != keyLen {
			outs[i] = storecopy.Skip("malformed log key")
			continue
		}
		id := keyID(it.Key)
		r, err := decodeRecord(id, it.Value)
		if err != nil {
			outs[i] = storecopy.Skip("undecodable log record")
			continue
		}
		rows.add(r, it.Value)
		at[id] = i
		// Present unless the INSERT returns it.
		outs[i] = storecopy.Outcome{State: storecopy.Present}
		if r.Quarantine != nil && r.Quarantine.Expired {
			expired[id] = true
		}
	}
	if len(rows.id) == 0 {
		return outs, nil
	}
	res, err := e.Dst.Query(ctx, insertLog, rows.domain, rows.id, rows.ts, rows.status, rows.verdict, rows.usr, rows.identity,
		rows.msgid, rows.trace, rows.ip, rows.partial, rows.sender, rows.subject, rows.rcpts, rows.rec, e.Node)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, id := range inserted {
		outs[at[id]] = storecopy.Outcome{State: storecopy.Copied}
		if expired[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		// Retention removed their content on the node: the column the
		// PostgreSQL store keeps for that.
		if _, err := e.Dst.Exec(ctx, `UPDATE quarantine_log SET q_expired = true
			WHERE id = ANY($1) AND ts >= $2 AND ts <= $3`, gone, rows.ts[0], rows.ts[len(rows.ts)-1]); err != nil {
			return nil, err
		}
	}
	return outs, nil
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
		CopyBatch: func(ctx context.Context, e storecopy.Env, batch []storecopy.Item) ([]storecopy.Outcome, error) {
			outs := make([]storecopy.Outcome, len(batch))
			var rows logRow
			at := make(map[rollupRow]int, len(batch))
			for i, it := range batch {
				if len(it.Key) < 7 || len(it.Value) != 8 {
					outs[i] = storecopy.Skip("malformed rollup counter")
					continue
				}
				outs[i] = storecopy.Outcome{State: storecopy.Present}
				r := parseRollup(string(it.Key))
				if _, dup := at[r]; dup {
					// Two keys that differ only in what a text column
					// cannot hold: the first one counts.
					continue
				}
				at[r] = i
				rows.rollDomain = append(rows.rollDomain, r.domain)
				rows.rollGran = append(rows.rollGran, r.gran)
				rows.rollGrp = append(rows.rollGrp, r.grp)
				rows.rollClass = append(rows.rollClass, r.class)
				rows.rollBucket = append(rows.rollBucket, r.bucket)
				rows.rollKey = append(rows.rollKey, r.key)
				rows.rollN = append(rows.rollN, int64(binary.BigEndian.Uint64(it.Value)))
			}
			if len(at) == 0 {
				return outs, nil
			}
			res, err := e.Dst.Query(ctx, `INSERT INTO quarantine_rollup (domain, gran, grp, class, bucket, key, n)
				SELECT * FROM unnest($1::text[], $2::smallint[], $3::smallint[], $4::smallint[], $5::int[], $6::text[], $7::bigint[])
				ON CONFLICT DO NOTHING
				RETURNING domain, gran, grp, class, bucket, key`,
				rows.rollDomain, rows.rollGran, rows.rollGrp, rows.rollClass, rows.rollBucket, rows.rollKey, rows.rollN)
			if err != nil {
				return nil, err
			}
			var r rollupRow
			_, err = pgx.ForEachRow(res, []any{&r.domain, &r.gran, &r.grp, &r.class, &r.bucket, &r.key}, func() error {
				if i, ok := at[r]; ok {
					outs[i] = storecopy.Outcome{State: storecopy.Copied}
				}
				return nil
			})
			return outs, err
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
