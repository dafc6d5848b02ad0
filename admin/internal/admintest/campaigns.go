package admintest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// Campaign ids of the fake: CampA has identities of both test domains
// and one of an unconfigured domain, CampB only of DomOut, CampC only of
// DomOther (one with markup in its name).
const (
	CampA = "01KB2X7ZQ0AAAAAA"
	CampB = "01KB2X7ZQ0BBBBBB"
	CampC = "01KB2X7ZQ0CCCCCC"
)

// Campaigns is campaign detection over fixed campaigns, with lock state
// read from the env's lock manager as the daemon's adapter does.
type Campaigns struct {
	locks *identity.Manager
	mu    sync.Mutex
	byID  map[string]*ops.CampaignDetail
}

var _ ops.Campaigns = (*Campaigns)(nil)

// NewCampaigns builds the fake over e's lock manager; its campaigns were
// last seen a few minutes before e's clock.
func NewCampaigns(e *Env) *Campaigns {
	now := e.Clock.Now()
	f := &Campaigns{locks: e.Locks, byID: map[string]*ops.CampaignDetail{}}
	add := func(id string, last time.Time, members ...ops.CampaignMember) {
		d := &ops.CampaignDetail{Campaign: ops.Campaign{ID: id, FirstSeen: last.Add(-time.Hour), LastSeen: last,
			Messages: uint64(10 * len(members)), Recipients: uint64(30 * len(members)), Identities: uint64(len(members)),
			Users: uint64(len(members)), Verdicts: ops.CampaignVerdicts{Clean: 5, Spam: uint64(10*len(members) - 5)}, SampleTx: e.SpamOut},
			Members: members}
		f.byID[id] = d
	}
	m := func(domain, ident, user string) ops.CampaignMember {
		return ops.CampaignMember{Domain: domain, Identity: ident, User: user, Messages: 10, Recipients: 30, LastSeen: now, LastTx: e.SpamOut}
	}
	add(CampA, now.Add(-time.Minute),
		m(DomOut, "alice@customer.example", "webhost1"),
		m(DomOut, "carol@customer.example", "webhost2"),
		m(DomOther, "mallory@other.example", "otheruser"),
		m("gone.example", "zed@gone.example", "olduser"))
	add(CampB, now.Add(-2*time.Minute), m(DomOut, "dave@customer.example", "webhost1"))
	add(CampC, now.Add(-3*time.Minute), m(DomOther, "trent@other.example", "otheruser"), m(DomOther, `<img src=x onerror=alert(1)>@other.example`, "otheruser"))
	return f
}

func (f *Campaigns) detail(id string) (ops.CampaignDetail, error) {
	d, ok := f.byID[id]
	if !ok {
		return ops.CampaignDetail{}, ops.Errorf(ops.ErrNotFound, "no campaign %q", id)
	}
	out := *d
	out.Members = nil
	for _, m := range d.Members {
		_, m.Locked = f.locks.Lookup(identity.IdentityTarget(m.Domain, m.Identity))
		out.Members = append(out.Members, m)
	}
	return out, nil
}

// ListCampaigns lists the campaigns by last seen.
func (f *Campaigns) ListCampaigns(ctx context.Context, q ops.CampaignQuery) ([]ops.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ops.Campaign
	for _, d := range f.byID {
		if q.Domain != "" && !hasDomain(d, q.Domain) || q.Confirmed && !d.Confirmed ||
			!q.Before.IsZero() && !d.LastSeen.Before(q.Before) || d.Identities < q.MinIdentities {
			continue
		}
		out = append(out, d.Campaign)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out[:min(len(out), q.Limit)], nil
}

func hasDomain(d *ops.CampaignDetail, domain string) bool {
	for _, m := range d.Members {
		if m.Domain == domain {
			return true
		}
	}
	return false
}

// Campaign returns one campaign with its members' lock state.
func (f *Campaigns) Campaign(ctx context.Context, id string) (ops.CampaignDetail, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.detail(id)
}

// ConfirmCampaign sets or clears the confirmation.
func (f *Campaigns) ConfirmCampaign(ctx context.Context, id, by string, confirmed bool) (ops.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.byID[id]
	if !ok {
		return ops.Campaign{}, ops.Errorf(ops.ErrNotFound, "no campaign %q", id)
	}
	d.Confirmed, d.ConfirmedBy = confirmed, ""
	if confirmed {
		d.ConfirmedBy = by
	}
	return d.Campaign, nil
}

// Confirmed reports whether campaign id is confirmed.
func (f *Campaigns) Confirmed(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.byID[id]
	return ok && d.Confirmed
}
