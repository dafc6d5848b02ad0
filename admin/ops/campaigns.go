package ops

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
)

// Campaigns is what the operations need of campaign detection
// (docs/campaigns.md). The daemon adapts its campaign store; every method
// returns an error wrapping ErrUnavailable when campaign detection is
// off, and ErrNotFound for an unknown id.
type Campaigns interface {
	// ListCampaigns returns campaigns by last seen, most recent first.
	ListCampaigns(ctx context.Context, q CampaignQuery) ([]Campaign, error)
	// Campaign returns one campaign with its tracked identities, most
	// recently seen first, each with its administrative domain and
	// whether it is locked now.
	Campaign(ctx context.Context, id string) (CampaignDetail, error)
	// ConfirmCampaign marks the campaign as confirmed spam (by is the
	// actor) or, with confirmed false, withdraws the confirmation.
	ConfirmCampaign(ctx context.Context, id, by string, confirmed bool) (Campaign, error)
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
	Clean, Suspect, Spam uint64
}

// Campaign is a campaign as the operations see it.
type Campaign struct {
	ID                  string
	FirstSeen, LastSeen time.Time
	// Messages observed, Recipients over them, Blocked by the confirmed
	// campaign signal.
	Messages, Recipients, Blocked uint64
	// Identities and Users count the distinct identities and outgoing
	// users that sent the campaign.
	Identities, Users uint64
	Verdicts          CampaignVerdicts
	Confirmed         bool
	ConfirmedBy       string
	ConfirmedAt       time.Time
	// SampleTx is the log id of the campaign's first message.
	SampleTx string
}

// CampaignMember is one identity that sent a campaign.
type CampaignMember struct {
	Domain, Identity, User string
	Messages, Recipients   uint64
	LastSeen               time.Time
	LastTx                 string
	// Locked is set when the identity is locked now.
	Locked bool
}

// CampaignDetail is a campaign with its identities.
type CampaignDetail struct {
	Campaign
	Members []CampaignMember
	// HiddenIdentities counts the tracked identities of other
	// administrative domains than a domain-scoped principal's, left out
	// of Members.
	HiddenIdentities int
}

// CampaignSkip is an identity of a campaign that was not locked.
type CampaignSkip struct {
	Domain, Identity string
	// Reason is already_locked, unknown_domain or no_domain (the
	// identity's outgoing user is no longer configured).
	Reason string
}

// CampaignLockResult is what locking a campaign's identities did.
type CampaignLockResult struct {
	Campaign string
	Locked   []identity.Lock
	Skipped  []CampaignSkip
	// SkippedOtherDomains counts the identities of other administrative
	// domains than a domain-scoped principal's, left alone.
	SkippedOtherDomains int
}

// maxCampaignID bounds a campaign id; ids are 16 characters.
const maxCampaignID = 64

func (o *Ops) campaigns() (Campaigns, error) {
	if o.opts.Campaigns == nil {
		return nil, Errorf(ErrUnavailable, "campaign detection is off in this daemon")
	}
	return o.opts.Campaigns, nil
}

// CheckCampaignID refuses what cannot be a campaign id (ErrNotFound).
func CheckCampaignID(id string) error {
	if id == "" || len(id) > maxCampaignID || strings.ContainsAny(id, " \t\r\n\x00/") {
		shown := id
		if len(shown) > 1024 {
			shown = shown[:1024]
		}
		return Errorf(ErrNotFound, "campaign %q: not a campaign id", strings.TrimSpace(shown))
	}
	return nil
}

// ListCampaigns lists campaigns; a domain-scoped principal sees those
// with an identity of its domain.
func (o *Ops) ListCampaigns(ctx context.Context, p Principal, q CampaignQuery) ([]Campaign, error) {
	cs, err := o.campaigns()
	if err != nil {
		return nil, err
	}
	if !p.All() {
		q.Domain = p.Domain
	}
	list, err := cs.ListCampaigns(ctx, q)
	if list == nil && err == nil {
		list = []Campaign{}
	}
	return list, err
}

// Campaign loads a campaign with the identities p may see; a
// domain-scoped principal may not see a campaign without an identity of
// its domain (ErrForbidden), as the list leaves it out.
func (o *Ops) Campaign(ctx context.Context, p Principal, id string) (CampaignDetail, error) {
	if err := CheckCampaignID(id); err != nil {
		return CampaignDetail{}, err
	}
	cs, err := o.campaigns()
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
	if p.All() {
		return d, nil
	}
	mine := d.Members[:0:0]
	for _, m := range d.Members {
		if p.Allows(m.Domain) {
			mine = append(mine, m)
		}
	}
	if len(mine) == 0 && len(d.Members) > 0 {
		return CampaignDetail{}, Errorf(ErrForbidden, "campaign %s has no identity of your token's domain (%s)", d.ID, p.Domain)
	}
	d.HiddenIdentities = len(d.Members) - len(mine)
	d.Members = mine
	return d, nil
}

// SetConfirmed confirms or unconfirms a campaign for p and writes the
// audit entry: a confirmed campaign blocks its copies from every domain,
// so this needs a token of scope all.
func (o *Ops) SetConfirmed(ctx context.Context, p Principal, id string, confirmed bool, via string) (Campaign, error) {
	if err := CheckCampaignID(id); err != nil {
		return Campaign{}, err
	}
	cs, err := o.campaigns()
	if err != nil {
		return Campaign{}, err
	}
	if err := needAll(p, "a confirmed campaign blocks mail of every domain: confirming or withdrawing needs a token of scope all"); err != nil {
		return Campaign{}, err
	}
	c, err := cs.ConfirmCampaign(ctx, id, p.Name, confirmed)
	if err != nil {
		return Campaign{}, err
	}
	action := AuditConfirm
	if !confirmed {
		action = AuditUnconfirm
	}
	o.record(p, action, AuditTarget{Kind: "campaign", Name: c.ID}, "", "", via)
	return c, nil
}

// LockCampaign locks every identity of a campaign p may lock, through
// the checks of Lock: the same target checks, the same reason and
// duration rules, one audit entry per lock. Identities already locked
// are skipped, not errors.
func (o *Ops) LockCampaign(ctx context.Context, p Principal, id, reason, duration, via string) (CampaignLockResult, error) {
	if err := CheckCampaignID(id); err != nil {
		return CampaignLockResult{}, err
	}
	reason, err := checkReason(reason, true)
	if err != nil {
		return CampaignLockResult{}, err
	}
	d, err := lockDuration(duration)
	if err != nil {
		return CampaignLockResult{}, err
	}
	c, err := o.Campaign(ctx, p, id)
	if err != nil {
		return CampaignLockResult{}, err
	}
	res := CampaignLockResult{Campaign: c.ID, Locked: []identity.Lock{}, Skipped: []CampaignSkip{}, SkippedOtherDomains: c.HiddenIdentities}
	// The reason names the campaign, so that each lock's history leads
	// back to it.
	full := reason
	if len(full)+len(c.ID)+12 <= maxReasonLength {
		full += " (campaign " + c.ID + ")"
	}
	suffix := "; campaign " + c.ID
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
		t, err := o.Target(p, string(identity.KindIdentity), m.Domain, m.Identity)
		switch {
		case errors.Is(err, ErrNotFound):
			res.Skipped = append(res.Skipped, CampaignSkip{Domain: m.Domain, Identity: m.Identity, Reason: "unknown_domain"})
			continue
		case err != nil:
			return res, err
		}
		l, err := o.opts.Locks.Lock(ctx, identity.LockRequest{Target: t, Reason: full, Actor: p.Name, Duration: d})
		if errors.Is(err, identity.ErrAlreadyLocked) {
			res.Skipped = append(res.Skipped, CampaignSkip{Domain: t.Domain, Identity: t.Name, Reason: "already_locked"})
			continue
		}
		if err != nil {
			// Locks taken so far stay, and are audited; the caller sees
			// the error and can repeat: what is locked is then skipped.
			return res, err
		}
		o.record(p, AuditLock, AuditTarget{Kind: string(t.Kind), Domain: t.Domain, Name: t.Name}, full, lockDetail(d, l)+suffix, via)
		res.Locked = append(res.Locked, l)
	}
	return res, nil
}
