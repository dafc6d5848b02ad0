package campaign

import (
	"time"
)

// crockford is the Crockford base32 alphabet.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newCampaign creates and registers a campaign started at now by fp. Its
// id is 16 characters of Crockford base32: 48 bits of the start time in
// milliseconds (ids sort by first seen) and 32 bits from the fingerprint
// and a counter. The id never changes and survives Encode/Decode.
func (s *Store) newCampaign(now int64, fp *Fingerprint) *campaign {
	h := uint64(fp.Exact) ^ uint64(len(fp.Attachments))
	if fp.HasSig {
		h ^= uint64(fp.Sig[0])<<32 | uint64(fp.Sig[1])
	} else if len(fp.Attachments) > 0 {
		d := fp.Attachments[0]
		h ^= uint64(d[0])<<24 | uint64(d[1])<<16 | uint64(d[2])<<8 | uint64(d[3])
	}
	var id string
	for {
		s.idSeq++
		lo := uint32(mix64(h ^ uint64(s.idSeq)))
		id = formatID(uint64(now/int64(time.Millisecond)), lo)
		if _, dup := s.byID[id]; !dup {
			break
		}
	}
	c := &campaign{id: id, first: now, last: now}
	s.byID[id] = c
	return c
}

func formatID(ms uint64, lo uint32) string {
	v := [10]byte{
		byte(ms >> 40), byte(ms >> 32), byte(ms >> 24), byte(ms >> 16), byte(ms >> 8), byte(ms),
		byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo),
	}
	var out [16]byte
	// 80 bits, 5 at a time, most significant first.
	for i := range out {
		bit := i * 5
		b := uint16(v[bit/8])<<8 | uint16(at(v[:], bit/8+1))
		out[i] = crockford[(b>>(11-bit%8))&31]
	}
	return string(out[:])
}

func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

// Campaign is a campaign as the API and console show it.
type Campaign struct {
	ID          string
	First, Last time.Time
	// Messages observed, Recipients over them, Blocked by the confirmed
	// signal; Clean, Suspect and Spam count the verdicts (blocked
	// messages as Spam).
	Messages, Recipients, Blocked uint64
	Clean, Suspect, Spam          uint64
	// Identities and Users count the distinct identities and users seen.
	// They are exact while at most MaxIdentities and MaxUsers; past that a
	// forgotten one that returns is counted again.
	Identities, Users uint64
	// SampleTx is the transaction id of the campaign's first message.
	SampleTx    string
	Confirmed   bool
	ConfirmedBy string
	ConfirmedAt time.Time
	// Members lists the tracked identities, most recently seen first; only
	// Get fills it.
	Members []Member
}

// Member is one identity that sent a campaign.
type Member struct {
	Identity   string
	User       string
	Messages   uint64
	Recipients uint64
	Last       time.Time
	LastTx     string
}

// Filter selects campaigns for List. The zero value lists the 100 most
// recently seen campaigns.
type Filter struct {
	// Limit is the most campaigns returned; 0 means 100, at most 1000.
	Limit int
	// Before, when set, lists only campaigns last seen before it (for
	// paging: pass the Last of the final campaign of the previous page).
	Before time.Time
	// Since, when set, lists only campaigns last seen at or after it.
	Since time.Time
	// MinMessages, MinIdentities and MinUsers select campaigns with at
	// least that many messages, distinct identities, distinct users.
	MinMessages, MinIdentities, MinUsers uint64
	// Confirmed lists only confirmed campaigns.
	Confirmed bool
	// Identity lists only campaigns whose tracked identities include it.
	Identity string
}

// List returns campaigns by last seen, most recent first, after dropping
// what has expired. It holds the
// store's lock while it walks the campaigns from the most recently seen,
// and stops at Limit matches or at Since; a filter that rejects most
// campaigns walks more of them (at most the number of campaigns, which
// MaxEntries+MaxConfirmed bounds).
func (s *Store) List(f Filter) []Campaign {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var before, since int64
	if !f.Before.IsZero() {
		before = f.Before.UnixNano()
	}
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	now := s.now(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	var out []Campaign
	for c := s.tail; c != nil && len(out) < limit; c = c.prev {
		if since != 0 && c.last < since {
			break
		}
		if before != 0 && c.last >= before {
			continue
		}
		if c.messages < f.MinMessages || c.identsSeen < f.MinIdentities || c.usersSeen < f.MinUsers {
			continue
		}
		if f.Confirmed && !c.confirmed {
			continue
		}
		if f.Identity != "" && c.idents.get(f.Identity) == nil {
			continue
		}
		out = append(out, c.summary(false))
	}
	return out
}

// Get returns one campaign with its members.
func (s *Store) Get(id string) (Campaign, error) {
	now := s.now(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	c := s.byID[id]
	if c == nil {
		return Campaign{}, ErrNotFound
	}
	return c.summary(true), nil
}

func (c *campaign) summary(members bool) Campaign {
	out := Campaign{
		ID: c.id, First: time.Unix(0, c.first), Last: time.Unix(0, c.last),
		Messages: c.messages, Recipients: c.recipients, Blocked: c.blocked,
		Clean: c.verdicts[Clean], Suspect: c.verdicts[Suspect], Spam: c.verdicts[Spam],
		Identities: c.identsSeen, Users: c.usersSeen,
		SampleTx: c.sampleTx, Confirmed: c.confirmed, ConfirmedBy: c.confirmedBy,
	}
	if c.confirmed {
		out.ConfirmedAt = time.Unix(0, c.confirmedAt)
	}
	if members {
		out.Members = make([]Member, 0, c.idents.n)
		for e := c.idents.tail; e != nil; e = e.prev {
			out.Members = append(out.Members, Member{
				Identity: e.key, User: e.v.user, Messages: e.v.messages,
				Recipients: e.v.recipients, Last: time.Unix(0, e.v.last), LastTx: e.v.tx,
			})
		}
	}
	return out
}
