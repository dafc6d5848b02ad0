package app

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/notify"
	"github.com/outguard/outguard/internal/storecopy"
	"github.com/outguard/outguard/quarantine"
)

// StoreCopyKinds returns what outguard store copy takes from a node's
// bbolt file into PostgreSQL (docs/config-store.md, "Growing from one
// node"), in the order it copies them: one entry per kind of record, each
// declared by the package that owns its bucket. A store that gains a
// PostgreSQL table gains its entry here. The order matters where a table refers to another: feedback's
// index after its reports.
func StoreCopyKinds() []storecopy.Kind {
	return []storecopy.Kind{
		quarantine.CopyLog(),
		quarantine.CopyContent(),
		identity.CopyLocks(),
		identity.CopyWouldLocks(),
		identity.CopyWindows(),
		arf.CopyPending(),
		arf.CopyExpired(),
		arf.CopySent(),
		notify.CopyOutbox(),
		feedback.CopyReports(),
		feedback.CopyIndex(),
		copyProfiles(),
		copyCampaigns(),
		content.CopyOverlay(),
		ops.CopyAudit(),
	}
}

// copyProfiles is the baseline profiles: baseline_profiles into
// detection_profiles. A profile already in the table (the identity sent
// through the fleet) is left as it is.
func copyProfiles() storecopy.Kind {
	return storecopy.Kind{
		Name:   "detection.profiles",
		Bucket: string(bucketBaseline),
		CopyBatch: func(ctx context.Context, e storecopy.Env, batch []storecopy.Item) ([]storecopy.Outcome, error) {
			type key struct{ domain, ident string }
			outs := make([]storecopy.Outcome, len(batch))
			at := make(map[key]int, len(batch))
			var domains []string
			var idents, profiles [][]byte
			for i, it := range batch {
				d, id := splitProfileKey(string(it.Key))
				outs[i] = storecopy.Outcome{State: storecopy.Present}
				at[key{d, string(id)}] = i
				domains, idents, profiles = append(domains, d), append(idents, id), append(profiles, it.Value)
			}
			rows, err := e.Dst.Query(ctx, `INSERT INTO detection_profiles (domain, identity, profile, node)
				SELECT d, i, p, $4 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u (d, i, p)
				ON CONFLICT DO NOTHING RETURNING domain, identity`, domains, idents, profiles, e.Node)
			if err != nil {
				return nil, err
			}
			var d string
			var id []byte
			_, err = pgx.ForEachRow(rows, []any{&d, &id}, func() error {
				outs[at[key{d, string(id)}]] = storecopy.Outcome{State: storecopy.Copied}
				return nil
			})
			return outs, err
		},
	}
}

// copyCampaigns is the campaign store's snapshot: the one key of the
// campaigns bucket, as the snapshot of the node the copy is attributed
// to, unless that node already has one.
func copyCampaigns() storecopy.Kind {
	return storecopy.Kind{
		Name:   "detection.campaigns",
		Bucket: string(bucketCampaigns),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			if string(it.Key) != string(keyCampaigns) {
				return storecopy.Skip("unknown key"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO detection_campaigns (node, state) VALUES ($1, $2)
				ON CONFLICT (node) DO NOTHING`, e.Node, it.Value)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
