package content

import (
	"context"

	"github.com/outguard/outguard/internal/storecopy"
)

// CopyOverlay is the kind of record outguard store copy takes from the
// content_overlay bucket of a node's bbolt file into the table of the same
// name (0203_content_overlay.sql, docs/config-store.md, "Growing from one
// node"): what the content model learnt on that node. An overlay already
// in the table (the fleet learnt too) is left as it is.
func CopyOverlay() storecopy.Kind {
	return storecopy.Kind{
		Name:   "content.overlay",
		Bucket: string(overlayBucket),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if string(it.Key) != string(overlayKey) {
				return storecopy.Skip("unknown key"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO content_overlay (name, overlay, node) VALUES ('overlay', $1, $2)
				ON CONFLICT (name) DO NOTHING`, it.Value, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
