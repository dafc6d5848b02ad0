package quarantine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Class is a report classification.
type Class uint8

// Classifications. A record counts toward ClassAll, toward ClassAccepted
// (status accepted) or ClassRejected (status quarantined or rejected;
// deferred and failed count toward neither), and toward the class of its
// verdict, whatever its status (so spam relayed in monitor mode counts as
// spam).
const (
	ClassAll Class = iota + 1
	ClassAccepted
	ClassRejected
	ClassClean
	ClassSpam
	ClassPhishing
	ClassVirus
	classEnd
)

var classNames = [...]string{"", "all", "accepted", "rejected", "clean", "spam", "phishing", "virus"}

// String returns the class's lower-case name.
func (c Class) String() string {
	if c == 0 || c >= classEnd {
		return fmt.Sprintf("class(%d)", uint8(c))
	}
	return classNames[c]
}

// ParseClass parses a class name as String writes it.
func ParseClass(s string) (Class, error) {
	for c := ClassAll; c < classEnd; c++ {
		if strings.EqualFold(s, classNames[c]) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: classification %q: use all, accepted, rejected, clean, spam, phishing or virus", ErrBadQuery, s)
}

// GroupBy is what a report groups by.
type GroupBy uint8

// Report groupings. Identities, users and senders are grouped within their
// administrative domain; keys are case folded.
const (
	GroupIdentity GroupBy = 'i'
	GroupUser     GroupBy = 'u'
	GroupDomain   GroupBy = 'd'
	GroupSender   GroupBy = 's'
)

// ParseGroupBy parses identity, user, domain or sender.
func ParseGroupBy(s string) (GroupBy, error) {
	switch strings.ToLower(s) {
	case "identity":
		return GroupIdentity, nil
	case "user":
		return GroupUser, nil
	case "domain":
		return GroupDomain, nil
	case "sender":
		return GroupSender, nil
	}
	return 0, fmt.Errorf("%w: group by %q: use identity, user, domain or sender", ErrBadQuery, s)
}

// String returns the grouping's name.
func (g GroupBy) String() string {
	switch g {
	case GroupIdentity:
		return "identity"
	case GroupUser:
		return "user"
	case GroupDomain:
		return "domain"
	case GroupSender:
		return "sender"
	}
	return fmt.Sprintf("group(%d)", uint8(g))
}

// ReportQuery asks for the top senders of one classification.
type ReportQuery struct {
	GroupBy GroupBy
	// Class defaults to ClassAll.
	Class Class
	// From and To bound the period: From is rounded down and To up to the
	// hour, or to the UTC day where the hour is older than
	// Options.HourlyRetention (and the grouping is not by domain). To
	// zero means Options.Now.
	From, To time.Time
	// Scope restricts the report to one administrative domain ("" all).
	Scope string
	// Limit is the number of rows; default 20, at most 10,000.
	Limit int
}

// ReportRow is one group's count.
type ReportRow struct {
	// Domain is the administrative domain; Key the identity, user, sender
	// or (for GroupDomain) the domain again. An empty Key counts mail
	// without an identity, or with the null sender.
	Domain string
	Key    string
	Count  int64
}

// Report limits.
const (
	DefaultReportLimit = 20
	MaxReportLimit     = 10000
	maxSeriesPoints    = 10000
)

// hourRange rounds [from, to) out to whole hours.
func (s *Store) hourRange(from, to time.Time) (uint32, uint32, error) {
	if to.IsZero() {
		to = s.opts.Now()
	}
	if from.IsZero() || !from.Before(to) {
		return 0, 0, fmt.Errorf("%w: the period needs a start before its end", ErrBadQuery)
	}
	h0 := hourBucket(from)
	h1 := uint32((to.Unix() + 3599) / 3600)
	return h0, h1, nil
}

// Report returns the groups with the most records of q.Class in q's
// period, largest count first, ties by domain and key. It reads the
// rollups (daily ones for whole days, hourly ones at the edges of the
// period), never the log.
func (s *Store) Report(q ReportQuery) ([]ReportRow, error) {
	switch q.GroupBy {
	case GroupIdentity, GroupUser, GroupDomain, GroupSender:
	default:
		return nil, fmt.Errorf("%w: group by %d", ErrBadQuery, q.GroupBy)
	}
	if q.Class == 0 {
		q.Class = ClassAll
	}
	if q.Class >= classEnd {
		return nil, fmt.Errorf("%w: class %d", ErrBadQuery, q.Class)
	}
	if q.Class == ClassClean && q.GroupBy != GroupDomain {
		return nil, fmt.Errorf("%w: clean mail is counted per domain only; group by domain or use another classification", ErrBadQuery)
	}
	if q.Limit < 0 || q.Limit > MaxReportLimit {
		return nil, fmt.Errorf("%w: limit %d: use 1 to %d", ErrBadQuery, q.Limit, MaxReportLimit)
	}
	if q.Limit == 0 {
		q.Limit = DefaultReportLimit
	}
	h0, h1, err := s.hourRange(q.From, q.To)
	if err != nil {
		return nil, err
	}
	// Hours before oldest may have lost their per-key hourly counters.
	hourly := hourGran(q.GroupBy)
	oldest := uint32(0)
	if hourly == granKeyHour {
		oldest = hourBucket(s.opts.Now().Add(-s.opts.HourlyRetention))
	}
	scope := normValue(q.Scope, true)
	classes := []Class{q.Class}
	if q.Class == ClassAll && perKey(q.GroupBy) {
		classes = []Class{ClassAccepted, ClassRejected, classOther}
	}
	var spans []rollupSpan
	for h := h0; h < h1; {
		switch {
		case h%24 == 0 && h+24 <= h1:
			spans = append(spans, rollupSpan{granDay, h / 24})
			h += 24
		case h < oldest:
			// An edge hour without hourly counters: its whole day.
			spans = append(spans, rollupSpan{granDay, h / 24})
			h = (h/24 + 1) * 24
		default:
			spans = append(spans, rollupSpan{hourly, h})
			h++
		}
	}
	sums, err := s.be.sumRollups(spans, classes, q.GroupBy, scope)
	if err != nil {
		return nil, err
	}
	rows := make([]ReportRow, 0, len(sums))
	for k, n := range sums {
		r := ReportRow{Count: n}
		if q.GroupBy == GroupDomain {
			r.Domain, r.Key = k, k
		} else {
			r.Domain, r.Key, _ = strings.Cut(k, "\x00")
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ReportRow) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Key, b.Key))
	})
	if len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	return rows, nil
}

// SeriesQuery asks for counts over time.
type SeriesQuery struct {
	// From and To bound the period, rounded out to Step.
	From, To time.Time
	// Step is time.Hour or 24*time.Hour (UTC days); default an hour.
	Step time.Duration
	// Scope restricts the counts to one administrative domain.
	Scope string
}

// SeriesPoint holds the counts of one step.
type SeriesPoint struct {
	Start                        time.Time
	All, Accepted, Rejected      int64
	Clean, Spam, Phishing, Virus int64
}

func (p *SeriesPoint) set(c Class, n int64) {
	switch c {
	case ClassAll:
		p.All = n
	case ClassAccepted:
		p.Accepted = n
	case ClassRejected:
		p.Rejected = n
	case ClassClean:
		p.Clean = n
	case ClassSpam:
		p.Spam = n
	case ClassPhishing:
		p.Phishing = n
	case ClassVirus:
		p.Virus = n
	}
}

// Series returns one point per step of the period, oldest first, with the
// counts per classification, for the console's overview chart.
func (s *Store) Series(q SeriesQuery) ([]SeriesPoint, error) {
	if q.Step == 0 {
		q.Step = time.Hour
	}
	var gran byte
	var unit int64
	switch q.Step {
	case time.Hour:
		gran, unit = granHour, 3600
	case 24 * time.Hour:
		gran, unit = granDay, 86400
	default:
		return nil, fmt.Errorf("%w: step %s: use 1h or 24h", ErrBadQuery, q.Step)
	}
	to := q.To
	if to.IsZero() {
		to = s.opts.Now()
	}
	if q.From.IsZero() || !q.From.Before(to) {
		return nil, fmt.Errorf("%w: the period needs a start before its end", ErrBadQuery)
	}
	b0 := uint32(q.From.Unix() / unit)
	b1 := uint32((to.Unix() + unit - 1) / unit)
	if b1-b0 > maxSeriesPoints {
		return nil, fmt.Errorf("%w: more than %d points; use a longer step or a shorter period", ErrBadQuery, maxSeriesPoints)
	}
	group, key := groupTotal, ""
	if q.Scope != "" {
		group, key = GroupDomain, normValue(q.Scope, true)
	}
	return s.be.series(gran, unit, b0, b1, group, key)
}

// rollupSpan is one hour or UTC day of rollup counters.
type rollupSpan struct {
	gran   byte
	bucket uint32
}

// sumRollups adds up, per group key, the counters of g in classes over
// spans, restricted to the domain scope unless it is "".
func (b *boltBackend) sumRollups(spans []rollupSpan, classes []Class, g GroupBy, scope string) (map[string]int64, error) {
	sums := make(map[string]int64)
	err := b.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRollup).Cursor()
		for _, sp := range spans {
			for _, class := range classes {
				prefix := rollupKey(sp.gran, sp.bucket, class, g, "")
				n := len(prefix)
				exact := false
				if scope != "" {
					prefix = append(prefix, scope...)
					if g == GroupDomain {
						exact = true
					} else {
						prefix = append(prefix, 0)
					}
				}
				for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
					if (exact && len(k) != len(prefix)) || len(v) != 8 {
						continue
					}
					sums[string(k[n:])] += int64(binary.BigEndian.Uint64(v))
				}
			}
		}
		return nil
	})
	return sums, err
}

// series reads the per-class counters of group|key for buckets [b0, b1).
func (b *boltBackend) series(gran byte, unit int64, b0, b1 uint32, group GroupBy, key string) ([]SeriesPoint, error) {
	points := make([]SeriesPoint, 0, b1-b0)
	err := b.db.View(func(tx *bbolt.Tx) error {
		rb := tx.Bucket(bucketRollup)
		for bk := b0; bk < b1; bk++ {
			p := SeriesPoint{Start: time.Unix(int64(bk)*unit, 0).UTC()}
			for c := ClassAll; c < classEnd; c++ {
				if v := rb.Get(rollupKey(gran, bk, c, group, key)); len(v) == 8 {
					p.set(c, int64(binary.BigEndian.Uint64(v)))
				}
			}
			points = append(points, p)
		}
		return nil
	})
	return points, err
}
