package admin

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
)

// AuditConfirm records a campaign confirmed as spam; AuditUnconfirm a
// confirmation withdrawn (docs/campaigns.md).
const (
	AuditConfirm   = "confirm"
	AuditUnconfirm = "unconfirm"
)

// Campaigns is what the API needs of campaign detection
// (docs/campaigns.md). The daemon adapts its campaign store; every method
// returns an error wrapping ErrUnavailable when campaign detection is
// off, and ErrNotFound for an unknown id.
type Campaigns interface {
	// ListCampaigns returns campaigns by last seen, most recent first.
	ListCampaigns(ctx context.Context, q CampaignQuery) ([]CampaignJSON, error)
	// Campaign returns one campaign with its tracked identities, most
	// recently seen first, each with its administrative domain and
	// whether it is locked now.
	Campaign(ctx context.Context, id string) (CampaignDetail, error)
	// ConfirmCampaign marks the campaign as confirmed spam (by is the
	// actor) or, with confirmed false, withdraws the confirmation.
	ConfirmCampaign(ctx context.Context, id, by string, confirmed bool) (CampaignJSON, error)
}

// CampaignQuery selects campaigns.
type CampaignQuery struct {
	// Limit is the page size, 1 to 1000.
	Limit int
	// Before keeps campaigns last seen before it (paging); Since those
	// last seen at or after it. Zero: no bound.
	Before, Since time.Time
	// MinIdentities and MinUsers keep campaigns with at least that many
	// distinct identities and users.
	MinIdentities, MinUsers uint64
	// Confirmed keeps confirmed campaigns only.
	Confirmed bool
	// Identity keeps campaigns sent by that identity.
	Identity string
	// Domain, when set, keeps campaigns with at least one tracked
	// identity of that administrative domain.
	Domain string
}

// CampaignVerdicts counts a campaign's messages by content verdict;
// blocked copies count as spam.
type CampaignVerdicts struct {
	Clean   uint64 `json:"clean"`
	Suspect uint64 `json:"suspect"`
	Spam    uint64 `json:"spam"`
}

// CampaignJSON is a campaign as the API lists it.
type CampaignJSON struct {
	ID        string    `json:"id"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Messages observed, Recipients over them, Blocked by the confirmed
	// campaign signal.
	Messages   uint64 `json:"messages"`
	Recipients uint64 `json:"recipients"`
	Blocked    uint64 `json:"blocked"`
	// Identities and Users count the distinct identities and outgoing
	// users that sent the campaign.
	Identities  uint64           `json:"identities"`
	Users       uint64           `json:"users"`
	Verdicts    CampaignVerdicts `json:"verdicts"`
	Confirmed   bool             `json:"confirmed"`
	ConfirmedBy string           `json:"confirmed_by,omitempty"`
	ConfirmedAt time.Time        `json:"confirmed_at,omitzero"`
	// SampleTx is the log id of the campaign's first message.
	SampleTx string `json:"sample_tx,omitempty"`
}

// CampaignMember is one identity that sent a campaign.
type CampaignMember struct {
	Domain     string    `json:"domain"`
	Identity   string    `json:"identity"`
	User       string    `json:"user"`
	Messages   uint64    `json:"messages"`
	Recipients uint64    `json:"recipients"`
	LastSeen   time.Time `json:"last_seen"`
	LastTx     string    `json:"last_tx,omitempty"`
	// Locked is set when the identity is locked now.
	Locked bool `json:"locked"`
}

// CampaignDetail is the answer of GET /api/v1/campaigns/{id}.
type CampaignDetail struct {
	CampaignJSON
	Members []CampaignMember `json:"identities"`
	// HiddenIdentities counts the tracked identities of other
	// administrative domains than a domain-scoped token's, left out of
	// Members.
	HiddenIdentities int `json:"hidden_identities,omitempty"`
}

// CampaignList is the answer of GET /api/v1/campaigns.
type CampaignList struct {
	Campaigns []CampaignJSON `json:"campaigns"`
	// Next is the cursor of the next (older) page, passed as before; ""
	// at the end.
	Next string `json:"next,omitempty"`
}

// CampaignLockRequest is the body of POST /api/v1/campaigns/{id}/lock.
type CampaignLockRequest struct {
	Reason string `json:"reason"`
	// Duration makes the locks temporary ("90m", "12h", "7d"); "" is
	// permanent.
	Duration string `json:"duration"`
}

// CampaignSkip is an identity of a campaign that was not locked.
type CampaignSkip struct {
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	// Reason is already_locked, unknown_domain or no_domain (the
	// identity's outgoing user is no longer configured).
	Reason string `json:"reason"`
}

// CampaignLockResult is the answer of POST /api/v1/campaigns/{id}/lock.
type CampaignLockResult struct {
	Campaign string         `json:"campaign"`
	Locked   []LockJSON     `json:"locked"`
	Skipped  []CampaignSkip `json:"skipped"`
	// SkippedOtherDomains counts the identities of other administrative
	// domains than a domain-scoped token's, left alone.
	SkippedOtherDomains int `json:"skipped_other_domains"`
}

// maxCampaignID bounds a campaign id in a path; ids are 16 characters.
const maxCampaignID = 64

func (a *API) campaigns() (Campaigns, error) {
	if a.opts.Campaigns == nil {
		return nil, errorf(ErrUnavailable, "campaign detection is off in this daemon")
	}
	return a.opts.Campaigns, nil
}

// campaignID checks the path's id: 404 for what cannot be an id.
func campaignID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxCampaignID || strings.ContainsAny(id, " \t\r\n\x00/") {
		return "", errorf(ErrNotFound, "campaign %q: not a campaign id", clip(id))
	}
	return id, nil
}

// campaignFor loads a campaign and keeps the identities the principal
// may see; a domain-scoped principal may not see a campaign without an
// identity of its domain (403), as the list leaves it out.
func (a *API) campaignFor(ctx context.Context, id string, pr Principal) (CampaignDetail, error) {
	cs, err := a.campaigns()
	if err != nil {
		return CampaignDetail{}, err
	}
	d, err := cs.Campaign(ctx, id)
	if err != nil {
		return CampaignDetail{}, err
	}
	if d.Members == nil {
		d.Members = []CampaignMember{}
	}
	if pr.All() {
		return d, nil
	}
	mine := d.Members[:0:0]
	for _, m := range d.Members {
		if pr.Allows(m.Domain) {
			mine = append(mine, m)
		}
	}
	if len(mine) == 0 && len(d.Members) > 0 {
		return CampaignDetail{}, errorf(ErrForbidden, "campaign %s has no identity of your token's domain (%s)", d.ID, pr.Domain)
	}
	d.HiddenIdentities = len(d.Members) - len(mine)
	d.Members = mine
	return d, nil
}

// campaignQuery reads the list filters of GET /api/v1/campaigns.
func (a *API) campaignQuery(r *http.Request, pr Principal) (CampaignQuery, *params) {
	p := newParams(r, "since", "before", "min_identities", "min_users", "confirmed", "identity", "limit")
	q := CampaignQuery{Identity: p.str("identity"), Confirmed: p.bool("confirmed")}
	if s := p.str("since"); s != "" {
		d, err := ParseDuration(s)
		if err != nil || d <= 0 {
			p.fail("since %q: use a duration like 30m, 24h or 7d", s)
		}
		q.Since = a.now().Add(-d)
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
	if !pr.All() {
		q.Domain = pr.Domain
	}
	return q, p
}

func (a *API) listCampaigns(w http.ResponseWriter, r *http.Request, pr Principal) error {
	q, p := a.campaignQuery(r, pr)
	if p.err != nil {
		return p.err
	}
	cs, err := a.campaigns()
	if err != nil {
		return err
	}
	list, err := cs.ListCampaigns(r.Context(), q)
	if err != nil {
		return err
	}
	res := CampaignList{Campaigns: list}
	if res.Campaigns == nil {
		res.Campaigns = []CampaignJSON{}
	}
	if len(list) == q.Limit {
		res.Next = list[len(list)-1].LastSeen.UTC().Format(time.RFC3339Nano)
	}
	writeJSON(w, res)
	return nil
}

func (a *API) getCampaign(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	d, err := a.campaignFor(r.Context(), id, pr)
	if err != nil {
		return err
	}
	writeJSON(w, d)
	return nil
}

// setConfirmed confirms or unconfirms a campaign for the principal: a
// confirmed campaign blocks its copies from every domain, so this needs
// a token of scope all.
func (a *API) setConfirmed(ctx context.Context, pr Principal, id string, confirmed bool, via string) (CampaignJSON, error) {
	cs, err := a.campaigns()
	if err != nil {
		return CampaignJSON{}, err
	}
	if !pr.All() {
		return CampaignJSON{}, errorf(ErrForbidden, "a confirmed campaign blocks mail of every domain: confirming or withdrawing needs a token of scope all")
	}
	c, err := cs.ConfirmCampaign(ctx, id, pr.Name, confirmed)
	if err != nil {
		return CampaignJSON{}, err
	}
	action := AuditConfirm
	if !confirmed {
		action = AuditUnconfirm
	}
	a.record(pr, action, AuditTarget{Kind: "campaign", Name: c.ID}, "", via)
	return c, nil
}

func (a *API) confirmCampaign(w http.ResponseWriter, r *http.Request, pr Principal) error {
	return a.confirmEndpoint(w, r, pr, true)
}

func (a *API) unconfirmCampaign(w http.ResponseWriter, r *http.Request, pr Principal) error {
	return a.confirmEndpoint(w, r, pr, false)
}

func (a *API) confirmEndpoint(w http.ResponseWriter, r *http.Request, pr Principal, confirmed bool) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	c, err := a.setConfirmed(r.Context(), pr, id, confirmed, "")
	if err != nil {
		return err
	}
	writeJSON(w, c)
	return nil
}

// lockCampaign locks every identity of a campaign the principal may
// lock, through the lock path of POST /api/v1/locks: the same target
// checks, the same reason and duration rules, one audit entry per lock.
// Identities already locked are skipped, not errors.
func (a *API) lockCampaign(ctx context.Context, pr Principal, id, reason, duration, via string) (CampaignLockResult, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return CampaignLockResult{}, err
	}
	var d time.Duration
	if duration != "" {
		d, err = ParseDuration(duration)
		if err != nil || d <= 0 || d > maxLockDuration {
			return CampaignLockResult{}, errorf(ErrBadRequest, "duration %q: use a positive duration like 90m, 12h or 7d (leave it out for a permanent lock)", duration)
		}
	}
	c, err := a.campaignFor(ctx, id, pr)
	if err != nil {
		return CampaignLockResult{}, err
	}
	res := CampaignLockResult{Campaign: c.ID, Locked: []LockJSON{}, Skipped: []CampaignSkip{}, SkippedOtherDomains: c.HiddenIdentities}
	// The reason names the campaign, so that each lock's history leads
	// back to it.
	full := reason
	if len(full)+len(c.ID)+12 <= maxReasonLength {
		full += " (campaign " + c.ID + ")"
	}
	suffix := "; campaign " + c.ID
	if via != "" {
		suffix += "; " + via
	}
	// Members come most recently seen first; lock in a stable order.
	members := append([]CampaignMember(nil), c.Members...)
	sort.SliceStable(members, func(i, j int) bool {
		if members[i].Domain != members[j].Domain {
			return members[i].Domain < members[j].Domain
		}
		return members[i].Identity < members[j].Identity
	})
	for _, m := range members {
		if m.Domain == "" {
			res.Skipped = append(res.Skipped, CampaignSkip{Identity: m.Identity, Reason: "no_domain"})
			continue
		}
		t, err := a.target(string(identity.KindIdentity), m.Domain, m.Identity, pr)
		switch {
		case errors.Is(err, ErrNotFound):
			res.Skipped = append(res.Skipped, CampaignSkip{Domain: m.Domain, Identity: m.Identity, Reason: "unknown_domain"})
			continue
		case err != nil:
			return res, err
		}
		l, err := a.opts.Locks.Lock(ctx, identity.LockRequest{Target: t, Reason: full, Actor: pr.Name, Duration: d})
		if errors.Is(err, identity.ErrAlreadyLocked) {
			res.Skipped = append(res.Skipped, CampaignSkip{Domain: t.Domain, Identity: t.Name, Reason: "already_locked"})
			continue
		}
		if err != nil {
			// Locks taken so far stay, and are audited; the caller sees
			// the error and can repeat: what is locked is then skipped.
			return res, err
		}
		detail := "permanent"
		if d > 0 {
			detail = "for " + d.String() + " until " + l.Expires.UTC().Format(time.RFC3339)
		}
		a.record(pr, AuditLock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, full, detail+suffix)
		res.Locked = append(res.Locked, a.lockJSON(l))
	}
	return res, nil
}

func (a *API) lockCampaignEndpoint(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	id, err := campaignID(r)
	if err != nil {
		return err
	}
	var req CampaignLockRequest
	if err := a.decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	res, err := a.lockCampaign(r.Context(), pr, id, req.Reason, req.Duration, "")
	if err != nil {
		return err
	}
	writeJSON(w, res)
	return nil
}
