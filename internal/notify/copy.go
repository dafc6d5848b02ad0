package notify

import (
	"context"
	"encoding/json"

	"github.com/outguard/outguard/internal/storecopy"
)

// CopyOutbox is the kind of record outguard store copy takes from the
// notify_outbox bucket of a node's bbolt file into the table of the same
// name (0200_notify.sql, docs/config-store.md, "Growing from one node"):
// the notifications not yet delivered, with their attempts and next
// attempt time, in the order they were added. An item of the same
// channel, recipient and event already in the table is left as it is,
// so the fleet does not deliver it twice.
func CopyOutbox() storecopy.Kind {
	return storecopy.Kind{
		Name:   "notify.outbox",
		Bucket: string(bucketOutbox),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			var x item
			if err := json.Unmarshal(it.Value, &x); err != nil || x.Channel == "" {
				return storecopy.Skip("undecodable outbox item"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO notify_outbox (channel, item, created, next_attempt, node)
				SELECT $1, $2::jsonb, $3, $4, $5
				WHERE NOT EXISTS (SELECT FROM notify_outbox WHERE channel = $1
					AND coalesce(item->>'to', '') = $6 AND item->'event'->>'id' = $7 AND item->'event'->>'type' = $8)`,
				x.Channel, string(it.Value), x.Created, x.NextAttempt, e.Node, x.To, x.Event.ID, string(x.Event.Type))
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
