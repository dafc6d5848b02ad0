package api

import (
	"net/http"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/internal/duration"
)

// campaignQuery reads the list filters of GET /api/v1/campaigns.
func (a *API) campaignQuery(r *http.Request) (ops.CampaignQuery, *params) {
	p := newParams(r, "since", "before", "min_identities", "min_users", "confirmed", "identity", "limit")
	q := ops.CampaignQuery{Identity: p.str("identity"), Confirmed: p.bool("confirmed")}
	if s := p.str("since"); s != "" {
		d, err := duration.Parse(s)
		if err != nil || d <= 0 {
			p.fail("since %q: use a duration like 30m, 24h or 7d", s)
		}
		q.Since = a.ops.Now().Add(-d)
	}
	if s := p.str("before"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			p.fail("before %q: pass the next of the previous page (an RFC 3339 time)", s)
		}
		q.Before = t
	}
	q.MinIdentities = uint64(p.int("min_identities", 0, 0, 1<<30))
	q.MinUsers = uint64(p.int("min_users", 0, 0, 1<<30))
	q.Limit = p.int("limit", 100, 1, 1000)
	return q, p
}

func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	q, p := a.campaignQuery(r)
	if p.err != nil {
		return p.err
	}
	list, err := a.ops.ListCampaigns(r.Context(), pr, q)
	if err != nil {
		return err
	}
	res := apiv1.CampaignList{Campaigns: make([]apiv1.Campaign, 0, len(list))}
	for _, c := range list {
		res.Campaigns = append(res.Campaigns, CampaignOf(c))
	}
	if len(list) == q.Limit {
		res.Next = list[len(list)-1].LastSeen.UTC().Format(time.RFC3339Nano)
	}
	writeJSON(w, res)
	return nil
}

func (a *API) getCampaign(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	d, err := a.ops.Campaign(r.Context(), pr, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, CampaignDetailOf(d))
	return nil
}

func (a *API) confirmCampaign(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	return a.confirmEndpoint(w, r, pr, true)
}

func (a *API) unconfirmCampaign(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	return a.confirmEndpoint(w, r, pr, false)
}

func (a *API) confirmEndpoint(w http.ResponseWriter, r *http.Request, pr ops.Principal, confirmed bool) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	c, err := a.ops.SetConfirmed(r.Context(), pr, r.PathValue("id"), confirmed, "")
	if err != nil {
		return err
	}
	writeJSON(w, CampaignOf(c))
	return nil
}

func (a *API) lockCampaignEndpoint(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	id := r.PathValue("id")
	if err := ops.CheckCampaignID(id); err != nil {
		return err
	}
	var req apiv1.CampaignLockRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	res, err := a.ops.LockCampaign(r.Context(), pr, id, req.Reason, req.Duration, "")
	if err != nil {
		return err
	}
	writeJSON(w, CampaignLockResultOf(res, a.ops.Now()))
	return nil
}
