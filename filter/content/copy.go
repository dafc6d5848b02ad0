package content

import (
	"context"

	"github.com/outguard/outguard/internal/storecopy"
)

// CopyOverlay is the kind of record outguard store copy takes from the
// content_overlay bucket of a node's bbolt file into the fleet's table of
// each node's lessons (0208_content_overlay_nodes.sql, docs/config-store.md,
// "Growing from one node"): what the content model learnt on that node
// becomes the lessons of the configured node_name, in the current
// generation. A row that node already has is left as it is.
func CopyOverlay() storecopy.Kind {
	return storecopy.Kind{
		Name:   "content.overlay",
		Bucket: string(overlayBucket),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if string(it.Key) != string(overlayKey) {
				return storecopy.Skip("unknown key"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO content_overlay_nodes (node, overlay, generation, stamp)
				SELECT $2, $1, g.generation, nextval('content_overlay_stamp') FROM content_overlay_generation g
				ON CONFLICT (node) DO NOTHING`, it.Value, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
