package ops

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// Identity profile bounds: the messages read for one profile, the
// complaints shown and the recipient domains ranked.
const (
	maxProfileMessages   = 20000
	maxProfileComplaints = 50
	maxProfileFeedback   = 1000
	profileTopDomains    = 10
)

// ProfileBucket holds the messages of one step of a profile's chart, by
// verdict (None: refused before classification).
type ProfileBucket struct {
	Start                                     time.Time
	Total, Clean, Spam, Phishing, Virus, None int
}

// DomainCount is a recipient domain and the messages sent to it.
type DomainCount struct {
	Domain string
	Count  int
}

// IdentityProfile is what is known of one identity: its messages and
// verdicts over a period, its lock and history, its usage against the
// automatic locking thresholds, the complaints attributed to it and the
// domains it sends to most.
type IdentityProfile struct {
	Target identity.Target
	// From and To bound the period; Step is an hour or a day.
	From, To time.Time
	Step     time.Duration
	Buckets  []ProfileBucket
	// Messages is the number of messages read; Truncated is set when
	// the period holds more than the profile reads (the oldest are then
	// not counted).
	Messages  int
	Truncated bool
	// Users are the outgoing users seen sending as the identity.
	Users      []string
	TopDomains []DomainCount
	// Lock is the latest lock, nil when never locked; Locked says
	// whether it is in force now.
	Lock    *identity.Lock
	Locked  bool
	History []identity.HistoryEntry
	// Usage is nil when nothing is counted in the current windows.
	Usage *identity.Usage
	// Complaints are the feedback reports attributed to the identity,
	// newest first; ComplaintsUnavailable is set when feedback listing
	// is not configured.
	Complaints            []feedback.Result
	ComplaintsUnavailable bool
}

// IdentityProfile returns the profile of the identity name of domain over
// the period before now (at most 90 days), for p: a domain-scoped
// principal may read only its domain's identities (ErrForbidden).
func (o *Ops) IdentityProfile(ctx context.Context, p Principal, domain, name string, period time.Duration) (IdentityProfile, error) {
	t, err := o.Target(p, string(identity.KindIdentity), domain, name)
	if err != nil {
		return IdentityProfile{}, err
	}
	if period <= 0 || period > 90*24*time.Hour {
		return IdentityProfile{}, Errorf(ErrBadRequest, "period %s: use up to 90 days", period)
	}
	now := o.now().UTC()
	step := time.Hour
	if period > 48*time.Hour {
		step = 24 * time.Hour
	}
	to := now.Truncate(step).Add(step)
	from := to.Add(-period).Truncate(step)
	pr := IdentityProfile{Target: t, From: from, To: to, Step: step}
	for s := from; s.Before(to); s = s.Add(step) {
		pr.Buckets = append(pr.Buckets, ProfileBucket{Start: s})
	}
	if err := o.profileMessages(p, &pr); err != nil {
		return IdentityProfile{}, err
	}
	if l, err := o.GetLock(ctx, p, t); err == nil {
		pr.Lock = &l
		pr.Locked = l.Active(now)
		if pr.History, err = o.History(ctx, p, t); err != nil && !errors.Is(err, identity.ErrNotFound) {
			return IdentityProfile{}, err
		}
	} else if !errors.Is(err, identity.ErrNotFound) {
		return IdentityProfile{}, err
	}
	if u, err := o.Usage(ctx, p, t); err == nil {
		pr.Usage = &u
	} else if !errors.Is(err, identity.ErrNotFound) {
		return IdentityProfile{}, err
	}
	return pr, o.profileComplaints(ctx, p, &pr)
}

// profileMessages reads the identity's messages of the period into the
// chart's buckets, its users and its recipient domains.
func (o *Ops) profileMessages(p Principal, pr *IdentityProfile) error {
	q := quarantine.Query{Domain: pr.Target.Domain, Identity: pr.Target.Name, From: pr.From, To: pr.To, Limit: quarantine.MaxLimit}
	domains := map[string]int{}
	users := map[string]bool{}
	for {
		page, err := o.Search(p, q)
		if err != nil {
			return err
		}
		for _, rec := range page.Records {
			if pr.Messages >= maxProfileMessages {
				pr.Truncated = true
				break
			}
			pr.Messages++
			i := int(rec.Time.UTC().Sub(pr.From) / pr.Step)
			if i >= 0 && i < len(pr.Buckets) {
				b := &pr.Buckets[i]
				b.Total++
				switch rec.Verdict {
				case quarantine.VerdictClean:
					b.Clean++
				case quarantine.VerdictSpam:
					b.Spam++
				case quarantine.VerdictPhishing:
					b.Phishing++
				case quarantine.VerdictVirus:
					b.Virus++
				default:
					b.None++
				}
			}
			if rec.User != "" {
				users[rec.User] = true
			}
			seen := map[string]bool{}
			for _, r := range rec.Recipients {
				_, d, ok := strings.Cut(r.Address, "@")
				d = strings.ToLower(d)
				if ok && d != "" && !seen[d] {
					seen[d] = true
					domains[d]++
				}
			}
		}
		if pr.Truncated || page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	for u := range users {
		pr.Users = append(pr.Users, u)
	}
	sort.Strings(pr.Users)
	for d, n := range domains {
		pr.TopDomains = append(pr.TopDomains, DomainCount{Domain: d, Count: n})
	}
	sort.Slice(pr.TopDomains, func(i, j int) bool {
		a, b := pr.TopDomains[i], pr.TopDomains[j]
		return a.Count > b.Count || a.Count == b.Count && a.Domain < b.Domain
	})
	if len(pr.TopDomains) > profileTopDomains {
		pr.TopDomains = pr.TopDomains[:profileTopDomains]
	}
	return nil
}

// profileComplaints collects the newest feedback reports attributed to
// the identity, among the newest stored for its domain.
func (o *Ops) profileComplaints(ctx context.Context, p Principal, pr *IdentityProfile) error {
	pr.Complaints = []feedback.Result{}
	if o.opts.FeedbackList == nil {
		pr.ComplaintsUnavailable = true
		return nil
	}
	list, err := o.ListFeedback(ctx, p, FeedbackQuery{Limit: maxProfileFeedback, Domain: pr.Target.Domain})
	if err != nil {
		return err
	}
	for _, r := range list.Reports {
		if strings.EqualFold(r.Domain, pr.Target.Domain) && r.Identity == pr.Target.Name {
			pr.Complaints = append(pr.Complaints, r)
			if len(pr.Complaints) == maxProfileComplaints {
				break
			}
		}
	}
	return nil
}
