package feedback

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/outguard/outguard/internal/storecopy"
	"github.com/outguard/outguard/quarantine"
)

// The kinds of records outguard store copy takes from a node's feedback
// buckets into the tables of 0201_feedback.sql (docs/config-store.md,
// "Growing from one node"). Reports keep their ids; the index comes after
// them, since each of its keys names a report.

// CopyReports is the feedback reports: each "<id>/meta" of app_feedback
// with its "<id>/raw" into feedback_reports. A report whose id is already
// in the table is left as it is.
func CopyReports() storecopy.Kind {
	return storecopy.Kind{
		Name:   "feedback.reports",
		Bucket: string(reportBucket),
		Record: func(key []byte) bool { return strings.HasSuffix(string(key), "/meta") },
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			id := strings.TrimSuffix(string(it.Key), "/meta")
			var r Result
			if err := json.Unmarshal(it.Value, &r); err != nil {
				return storecopy.Skip("undecodable report"), nil
			}
			raw := e.Src.Bucket(reportBucket).Get([]byte(id + "/raw"))
			if raw == nil {
				return storecopy.Skip("report text missing"), nil
			}
			received := r.Received
			if received.IsZero() {
				// Reports stored before Received was recorded: the id
				// holds the arrival time.
				t, err := quarantine.IDTime(id)
				if err != nil {
					return storecopy.Skip("no arrival time"), nil
				}
				received = t
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO feedback_reports (id, received, counted, meta, raw, node)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, id, received, r.Counted, it.Value, raw, e.Node)
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}

// CopyIndex is the de-duplication index: app_feedback_index into
// feedback_index. A key already in the table keeps the report it names,
// as when two nodes receive the same report; a key whose report is not
// in the table is skipped.
func CopyIndex() storecopy.Kind {
	return storecopy.Kind{
		Name:   "feedback.index",
		Bucket: string(indexBucket),
		Copy: func(ctx context.Context, e storecopy.Env, it storecopy.Item) (storecopy.Outcome, error) {
			var exists bool
			if err := e.Dst.QueryRow(ctx, `SELECT EXISTS (SELECT FROM feedback_reports WHERE id = $1)`, string(it.Value)).Scan(&exists); err != nil {
				return storecopy.Outcome{}, err
			}
			if !exists {
				return storecopy.Skip("its report is not copied"), nil
			}
			tag, err := e.Dst.Exec(ctx, `INSERT INTO feedback_index (key, id) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
				it.Key, string(it.Value))
			if err != nil {
				return storecopy.Outcome{}, err
			}
			return storecopy.InsertOutcome(tag), nil
		},
	}
}
