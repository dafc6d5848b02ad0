package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/outguard/outguard/admin/ops"
)

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	v := r.URL.Query()
	f := ops.AuditFilter{Action: clip(v.Get("action")), Actor: clip(v.Get("actor")), Domain: clip(v.Get("domain")), Limit: 100}
	if cur := v.Get("cursor"); cur != "" {
		n, err := strconv.ParseUint(cur, 10, 64)
		if err != nil || n == 0 {
			return ops.Errorf(ops.ErrBadRequest, "cursor %q: follow the console's own links", cur)
		}
		f.Before = n
	}
	entries, err := c.ops.Audit(r.Context(), s.p, f)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Audit trail", "Entries": entries, "Action": f.Action, "Actor": f.Actor,
		"Domain": v.Get("domain"), "Actions": ops.AuditActions, "Scoped": !s.p.All()}
	if len(entries) == f.Limit {
		next := cloneValues(v)
		next.Set("cursor", strconv.FormatUint(entries[len(entries)-1].ID, 10))
		data["Next"] = "/audit?" + next.Encode()
	}
	if v.Get("cursor") != "" {
		first := cloneValues(v)
		first.Del("cursor")
		data["FirstURL"] = "/audit?" + first.Encode()
	}
	c.render(w, r, s, http.StatusOK, "audit", data)
	return nil
}

// auditTargetURL links an audit entry's target to its page.
func auditTargetURL(t ops.AuditTarget) string {
	switch t.Kind {
	case "message":
		return "/log/" + url.PathEscape(t.Name)
	case "campaign":
		return campaignURL(t.Name)
	case "user", "identity":
		if t.Domain != "" && t.Name != "" {
			return lockURL(t.Kind, t.Domain, t.Name)
		}
	}
	return ""
}
