package apiv1

import "time"

// CampaignVerdicts counts a campaign's messages by content verdict;
// blocked copies count as spam.
type CampaignVerdicts struct {
	Clean   uint64 `json:"clean"`
	Suspect uint64 `json:"suspect"`
	Spam    uint64 `json:"spam"`
}

// Campaign is a campaign as the API lists it (docs/campaigns.md).
type Campaign struct {
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
	Campaign
	Members []CampaignMember `json:"identities"`
	// HiddenIdentities counts the tracked identities of other
	// administrative domains than a domain-scoped token's, left out of
	// Members.
	HiddenIdentities int `json:"hidden_identities,omitempty"`
}

// CampaignList is the answer of GET /api/v1/campaigns.
type CampaignList struct {
	Campaigns []Campaign `json:"campaigns"`
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
	Locked   []Lock         `json:"locked"`
	Skipped  []CampaignSkip `json:"skipped"`
	// SkippedOtherDomains counts the identities of other administrative
	// domains than a domain-scoped token's, left alone.
	SkippedOtherDomains int `json:"skipped_other_domains"`
}
