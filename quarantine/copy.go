package quarantine

import (
	"context"
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
// the search columns the PostgreSQL store derives from each record, and
// the report counters of each record it inserts (quarantine_counts, as
// the store counts a record it writes): a record already in the table is
// not counted again. The node's own counters (quarantine.rollup) are not
// copied: those of records its retention removed are lost.
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
	recs := make(map[string]*Record, len(batch))
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
		recs[id] = r
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
	agg := make(map[countKey]*counts)
	for _, id := range inserted {
		outs[at[id]] = storecopy.Outcome{State: storecopy.Copied}
		if expired[id] {
			gone = append(gone, id)
		}
		addCounts(agg, rollupKeys(recs[id]))
	}
	if len(agg) > 0 {
		if _, err := e.Dst.Exec(ctx, upsertCounts, sortedCounts(agg).args()...); err != nil {
			return nil, err
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
