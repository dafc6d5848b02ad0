package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/identity"
)

// campaignWire adapts the campaign store (docs/campaigns.md) to the admin
// API. It reads the store at every call, so that the API built at start
// serves the store whenever campaign detection is on.
type campaignWire struct {
	// store returns the campaign store, nil when detection is off.
	store func() *campaign.Store
	// domainOf returns the administrative domain of an outgoing user.
	domainOf func(user string) (string, bool)
	// locks tells whether an identity is locked now.
	locks *identity.Manager
	// shared tells the fleet of a confirmation or withdrawal (postgres
	// backend); nil or a no-op on one node.
	shared func(id, by string, confirmed bool)
}

var _ ops.Campaigns = campaignWire{}

// campaignsWire is the adapter over the App's components.
func (a *App) campaignsWire() campaignWire {
	return campaignWire{
		store: func() *campaign.Store { return a.campaigns },
		domainOf: func(user string) (string, bool) {
			e, ok := a.auth.table.Load().byName[user]
			if !ok {
				return "", false
			}
			return e.user.Domain, true
		},
		locks:  a.ids,
		shared: func(id, by string, confirmed bool) { a.detect.sharedConfirmation(id, by, confirmed) },
	}
}

func (w campaignWire) get() (*campaign.Store, error) {
	s := w.store()
	if s == nil {
		return nil, fmt.Errorf("%w: campaign detection is off (see docs/campaigns.md)", ops.ErrUnavailable)
	}
	return s, nil
}

// wireErr maps the store's errors onto the API's.
func wireErr(id string, err error) error {
	if errors.Is(err, campaign.ErrNotFound) {
		return fmt.Errorf("%w: no campaign %q (unknown, or its traffic has left the window)", ops.ErrNotFound, id)
	}
	return err
}

func campaignJSON(c campaign.Campaign) ops.Campaign {
	return ops.Campaign{
		ID: c.ID, FirstSeen: c.First.UTC(), LastSeen: c.Last.UTC(),
		Messages: c.Messages, Recipients: c.Recipients, Blocked: c.Blocked,
		Identities: c.Identities, Users: c.Users,
		Verdicts:  ops.CampaignVerdicts{Clean: c.Clean, Suspect: c.Suspect, Spam: c.Spam},
		Confirmed: c.Confirmed, ConfirmedBy: c.ConfirmedBy, ConfirmedAt: c.ConfirmedAt.UTC(),
		SampleTx: c.SampleTx,
	}
}

// members converts a campaign's identities: the domain is the one of the
// identity's outgoing user, as in the pipeline's locks.
func (w campaignWire) members(c campaign.Campaign) []ops.CampaignMember {
	out := make([]ops.CampaignMember, 0, len(c.Members))
	for _, m := range c.Members {
		d, _ := w.domainOf(m.User)
		cm := ops.CampaignMember{Domain: d, Identity: m.Identity, User: m.User, Messages: m.Messages,
			Recipients: m.Recipients, LastSeen: m.Last.UTC(), LastTx: m.LastTx}
		if d != "" && w.locks != nil {
			_, cm.Locked = w.locks.Lookup(identity.IdentityTarget(d, m.Identity))
		}
		out = append(out, cm)
	}
	return out
}

// inDomain reports whether one of the campaign's identities (ident, if
// not "") belongs to domain.
func (w campaignWire) inDomain(c campaign.Campaign, domain, ident string) bool {
	for _, m := range c.Members {
		if ident != "" && m.Identity != ident {
			continue
		}
		if d, ok := w.domainOf(m.User); ok && strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

func (w campaignWire) ListCampaigns(ctx context.Context, q ops.CampaignQuery) ([]ops.Campaign, error) {
	s, err := w.get()
	if err != nil {
		return nil, err
	}
	f := campaign.Filter{Limit: q.Limit, Before: q.Before, Since: q.Since, MinIdentities: q.MinIdentities,
		MinUsers: q.MinUsers, Confirmed: q.Confirmed, Identity: q.Identity}
	out := []ops.Campaign{}
	if q.Domain == "" {
		for _, c := range s.List(f) {
			out = append(out, campaignJSON(c))
		}
		return out, nil
	}
	// A domain-scoped listing keeps the campaigns with an identity of
	// the domain: read pages of the store until this one is full. The
	// store's bounds bound the walk.
	f.Limit = 1000
	for {
		page := s.List(f)
		for _, c := range page {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			full, err := s.Get(c.ID)
			if err != nil {
				continue // expired meanwhile
			}
			if w.inDomain(full, q.Domain, q.Identity) {
				out = append(out, campaignJSON(c))
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.Before = page[len(page)-1].Last
	}
}

func (w campaignWire) Campaign(ctx context.Context, id string) (ops.CampaignDetail, error) {
	s, err := w.get()
	if err != nil {
		return ops.CampaignDetail{}, err
	}
	c, err := s.Get(id)
	if err != nil {
		return ops.CampaignDetail{}, wireErr(id, err)
	}
	return ops.CampaignDetail{Campaign: campaignJSON(c), Members: w.members(c)}, nil
}

func (w campaignWire) ConfirmCampaign(ctx context.Context, id, by string, confirmed bool) (ops.Campaign, error) {
	s, err := w.get()
	if err != nil {
		return ops.Campaign{}, err
	}
	if confirmed {
		err = s.Confirm(id, by)
	} else {
		err = s.Unconfirm(id)
	}
	if err != nil {
		return ops.Campaign{}, wireErr(id, err)
	}
	if w.shared != nil {
		w.shared(id, by, confirmed)
	}
	c, err := s.Get(id)
	if err != nil {
		return ops.Campaign{}, wireErr(id, err)
	}
	return campaignJSON(c), nil
}
