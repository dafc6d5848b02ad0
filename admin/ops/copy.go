package ops

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"

	"github.com/outguard/outguard/internal/storecopy"
)

// CopyAudit is the kind of record outguard store copy takes from the
// admin_audit bucket of a node's bbolt file into the fleet's table of the
// same name (docs/config-store.md, "Growing from one node"). Each entry
// keeps its time, actor, scope, target and reason, and names its node
// (the entry's own, else the configured node_name). The fleet's ids are
// its own, so a copied entry lists among the fleet's by the order of the
// copy; copied_from (the node and the bbolt sequence number) makes a
// second copy of the same file find every entry already present.
func CopyAudit() storecopy.Kind {
	return storecopy.Kind{
		Name:   "admin.audit",
		Bucket: string(bucketAudit),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if len(it.Key) != 8 {
				return storecopy.Skip("not an audit key"), nil
			}
			var a AuditEntry
			if err := json.Unmarshal(it.Value, &a); err != nil {
				return storecopy.Skip("unreadable entry"), nil
			}
			if a.Node == "" {
				a.Node = e.Node
			}
			from := a.Node + ":" + strconv.FormatUint(binary.BigEndian.Uint64(it.Key), 10)
			tag, err := e.Dst.Exec(ctx, `INSERT INTO admin_audit (at, node, actor, scope, action, target_kind, target_domain,
				target_name, reason, detail, copied_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (copied_from) WHERE copied_from IS NOT NULL DO NOTHING`,
				a.At.UTC(), a.Node, a.Actor, a.Scope, a.Action, a.Target.Kind, a.Target.Domain, a.Target.Name, a.Reason, a.Detail, from)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
