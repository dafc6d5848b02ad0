package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// lockedIdentities returns, by log id, whether the identity of each
// record is locked now (the log's badge); each identity is looked up
// once.
func (c *Console) lockedIdentities(r *http.Request, s *session, recs []*quarantine.Record) map[string]bool {
	out := map[string]bool{}
	seen := map[identity.Target]bool{}
	for _, rec := range recs {
		if rec.Identity == "" {
			continue
		}
		t := identity.IdentityTarget(rec.Domain, rec.Identity)
		locked, ok := seen[t]
		if !ok {
			locked = c.ops.Locked(r.Context(), s.p, t)
			seen[t] = locked
		}
		out[rec.ID] = locked
	}
	return out
}

// bulkItem is one item of a bulk action's JSON answer.
type bulkItem struct {
	ID       string `json:"id"`
	Domain   string `json:"domain,omitempty"`
	Identity string `json:"identity,omitempty"`
	Done     bool   `json:"done"`
	Already  bool   `json:"already"`
	Error    string `json:"error,omitempty"`
}

// logBulk applies one action to the messages selected in the log, with
// one reason: release, delete, or lock their identities. The operations
// layer checks each item's scope and writes one audit entry per item.
func (c *Console) logBulk(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	back := localPath(f.Get("back"), "/log")
	action := f.Get("action")
	items, err := c.ops.Bulk(r.Context(), s.p, ops.BulkOrder{Action: action, IDs: f["id"], Reason: f.Get("reason"),
		Duration: clip(f.Get("duration")), Via: via})
	if err != nil {
		if st, _ := ops.Classify(err); st == http.StatusBadRequest && !wantsJSON(r) {
			c.setFlash(r.Context(), s, "Nothing done: "+err.Error(), true)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return nil
		}
		return err
	}
	var done, already []string
	var failed []string
	out := make([]bulkItem, 0, len(items))
	for _, it := range items {
		name := it.ID
		if action == ops.BulkLock && it.Identity != "" {
			name = it.Identity + " (" + it.Domain + ")"
		}
		bi := bulkItem{ID: it.ID, Domain: it.Domain, Identity: it.Identity, Done: it.Done, Already: it.Already}
		switch {
		case it.Err != nil:
			bi.Error = it.Err.Error()
			if st, _ := ops.Classify(it.Err); st == http.StatusInternalServerError {
				c.log.Error("admin console: bulk action failed", "action", action, "id", it.ID, "err", it.Err)
				bi.Error = "internal error; see outguard's log"
			}
			failed = append(failed, name+": "+bi.Error)
		case it.Already:
			already = append(already, name)
		default:
			done = append(done, name)
		}
		out = append(out, bi)
	}
	verb := map[string]string{ops.BulkRelease: "Released", ops.BulkDelete: "Deleted the content of", ops.BulkLock: "Locked"}[action]
	one, many := "message", "messages"
	if action == ops.BulkLock {
		one, many = "identity", "identities"
	}
	msg := fmt.Sprintf("%s %d %s: %s.", verb, len(done), plural(len(done), one, many), strings.Join(done, ", "))
	if len(done) == 0 {
		msg = fmt.Sprintf("%s no %s.", verb, many)
	}
	if len(already) > 0 {
		msg += fmt.Sprintf(" Already done before, unchanged: %s.", strings.Join(already, ", "))
	}
	if len(failed) > 0 {
		msg += fmt.Sprintf(" Failed: %s.", strings.Join(failed, "; "))
	}
	if wantsJSON(r) {
		writeJSON(w, out)
		return nil
	}
	c.setFlash(r.Context(), s, msg, len(failed) > 0)
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// csvHeader is the header row of the log's CSV export.
var csvHeader = []string{"time", "id", "status", "verdict", "score", "band", "user", "domain", "identity", "sender",
	"recipients", "subject", "message_id", "client_ip", "size"}

// logCSV streams every message matching the log page's rules as CSV
// (RFC 4180, a header row), page by page through the same scoped search.
// A cell that a spreadsheet would take for a formula (starting with =, +,
// -, @, tab or carriage return) is prefixed with an apostrophe.
func (c *Console) logCSV(w http.ResponseWriter, r *http.Request, s *session) error {
	_, q, err := c.parseLogFilter(r.URL.Query())
	if err != nil {
		return ops.Errorf(ops.ErrBadRequest, "%s", err.Error())
	}
	q.Limit, q.Cursor = quarantine.MaxLimit, ""
	page, err := c.ops.Search(s.p, q)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="outguard-log-`+c.ops.Now().UTC().Format("20060102T150405Z")+`.csv"`)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	cw.Write(csvHeader)
	fl, _ := w.(http.Flusher)
	for {
		for _, rec := range page.Records {
			cw.Write(csvRow(rec))
		}
		cw.Flush()
		if fl != nil {
			fl.Flush()
		}
		if cw.Error() != nil || page.NextCursor == "" || r.Context().Err() != nil {
			return nil
		}
		q.Cursor = page.NextCursor
		if page, err = c.ops.Search(s.p, q); err != nil {
			// The header is sent: the cut is logged, and the file ends
			// without its remaining rows.
			c.log.Error("admin console: CSV export cut short", "err", err)
			return nil
		}
	}
}

func csvRow(rec *quarantine.Record) []string {
	addrs := make([]string, len(rec.Recipients))
	for i, rc := range rec.Recipients {
		addrs[i] = rc.Address
	}
	ip := ""
	if rec.ClientIP.IsValid() {
		ip = rec.ClientIP.String()
	}
	row := []string{rec.Time.UTC().Format(time.RFC3339), rec.ID, rec.Status.String(), rec.Verdict.String(),
		strconv.FormatFloat(rec.Score, 'f', 2, 64), band(rec), rec.User, rec.Domain, rec.Identity, rec.Sender,
		strings.Join(addrs, " "), rec.Subject, rec.MessageID, ip, strconv.FormatInt(rec.Size, 10)}
	for i, v := range row {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			row[i] = "'" + v
		}
	}
	return row
}
