package arf

import (
	"context"
	"encoding/json"
	"time"

	"github.com/outguard/outguard/internal/storecopy"
)

// The kinds of records outguard store copy takes from a node's outbox
// buckets into arf_outbox (0101_arf_outbox.sql, docs/config-store.md,
// "Growing from one node"). Each report keeps its id, so a report already
// in the table (pending, sent or expired) is left as it is and the fleet
// does not send it twice.

// CopyPending is the reports waiting to be sent (arf_outbox with their
// text from arf_outbox_raw), with their attempts and next attempt time.
func CopyPending() storecopy.Kind {
	return copyEntries("arf.pending", bucketPending, "pending")
}

// CopyExpired is the reports that expired unsent (arf_outbox_expired
// with their text), kept for requeueing or deletion.
func CopyExpired() storecopy.Kind {
	return copyEntries("arf.expired", bucketExpired, "expired")
}

func copyEntries(name string, bucket []byte, state string) storecopy.Kind {
	return storecopy.Kind{
		Name:   name,
		Bucket: string(bucket),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			var en Entry
			if err := json.Unmarshal(it.Value, &en); err != nil {
				return storecopy.Skip("undecodable outbox entry"), nil
			}
			en.ID = string(it.Key)
			var raw []byte
			if b := e.Src.Bucket(bucketRaw); b != nil {
				raw = b.Get(it.Key)
			}
			if raw == nil {
				return storecopy.Skip("report text missing"), nil
			}
			if en.To == nil {
				en.To = []string{}
			}
			var expired *time.Time
			if state == "expired" {
				t := en.Expired.UTC()
				if en.Expired.IsZero() {
					t = en.NextAttempt.UTC()
				}
				expired = &t
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO arf_outbox (id, state, to_addrs, raw, created, attempts, next_attempt, last_error, expired_at, node)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
				en.ID, state, en.To, raw, en.Created.UTC(), en.Attempts, en.NextAttempt.UTC(), en.LastError, expired, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// CopySent is the ids of the reports already sent (arf_outbox_sent, with
// when): rows in state sent without text, so that a block the fleet sees
// again is not reported twice. They go with the outbox's own pruning of
// sent reports.
func CopySent() storecopy.Kind {
	return storecopy.Kind{
		Name:   "arf.sent",
		Bucket: string(bucketSent),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			at, err := time.Parse(time.RFC3339Nano, string(it.Value))
			if err != nil {
				return storecopy.Skip("unreadable time sent"), nil
			}
			at = at.UTC()
			tag, err := e.Dst.Exec(ctx, `INSERT INTO arf_outbox (id, state, to_addrs, created, next_attempt, sent_at, node)
				VALUES ($1, 'sent', '{}', $2, $2, $2, $3) ON CONFLICT (id) DO NOTHING`, string(it.Key), at, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
