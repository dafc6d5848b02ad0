package quarantine

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Query selects log records. Every set field must match (AND); within a
// list field any value may match (OR). String matches ignore case except
// MessageID and TraceToken.
type Query struct {
	// Statuses and Verdicts: the record's is one of these.
	Statuses []Status
	Verdicts []Verdict
	// User, Domain and Identity match exactly.
	User     string
	Domain   string
	Identity string
	// Sender, Recipient and Subject match if they contain the value;
	// Recipient matches any of the record's recipients.
	Sender    string
	Recipient string
	Subject   string
	// MessageID matches exactly, angle brackets optional.
	MessageID string
	// TraceToken matches exactly.
	TraceToken string
	// Partial keeps only records whose content was partially scanned
	// (Record.Partial set).
	Partial bool
	// ClientIP matches the client's address (IPv4-mapped IPv6 addresses
	// match their IPv4 form).
	ClientIP netip.Addr
	// From and To bound the transaction time (the id's time): From
	// inclusive, To exclusive; zero means unbounded.
	From, To time.Time
	// Scope restricts the query to one administrative domain, whatever
	// the other fields say: set it from a domain-scoped admin token.
	Scope string
	// Limit is the page size; default 50, at most 1000.
	Limit int
	// Cursor continues a previous search: pass its Page.NextCursor with
	// the same query.
	Cursor string
}

// Page is one page of search results, newest first.
type Page struct {
	Records []*Record
	// NextCursor continues the search after the last record; "" when
	// there is nothing more.
	NextCursor string
	// Partial is true when the page was cut short because the search
	// examined Options.MaxScan entries; NextCursor then continues where
	// it stopped.
	Partial bool
}

// Search limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

const cursorPrefix = "c1."

func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

// parseCursor decodes a cursor made by encodeCursor; it is outside input.
func parseCursor(c string) (string, error) {
	if len(c) > 64 {
		return "", fmt.Errorf("%w: cursor too long", ErrBadQuery)
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", fmt.Errorf("%w: cursor is not base64url", ErrBadQuery)
	}
	rest, ok := bytes.CutPrefix(b, []byte(cursorPrefix))
	if !ok {
		return "", fmt.Errorf("%w: not a cursor from this store", ErrBadQuery)
	}
	id, err := ParseID(string(rest))
	if err != nil {
		return "", fmt.Errorf("%w: cursor: %w", ErrBadQuery, err)
	}
	return id, nil
}

// Search returns the records matching q, newest first. It reads an index
// when q has an exact field (message-id, trace token, identity, user,
// client IP, domain or scope, statuses other than accepted, verdicts spam,
// phishing or virus, in that order of preference), else the log in time
// order; the other fields are checked
// on each candidate, status, verdict and domain without loading the
// record. The time range bounds either walk.
func (s *Store) Search(q Query) (Page, error) {
	if err := q.check(); err != nil {
		return Page{}, err
	}
	if err := s.degraded(); err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	domain := q.Domain
	if q.Scope != "" {
		if domain != "" && !strings.EqualFold(domain, q.Scope) {
			return Page{}, nil
		}
		domain = q.Scope
	}
	lo, hi := "", ""
	if !q.From.IsZero() {
		lo = idFloor(q.From)
	}
	if !q.To.IsZero() {
		hi = idFloor(q.To)
	}
	if q.Cursor != "" {
		c, err := parseCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		if hi == "" || c < hi {
			hi = c
		}
	}
	return s.be.search(&q, domain, lo, hi, newMatcher(&q, domain), limit)
}

// search walks the candidates of q in bbolt: see Store.Search.
func (b *boltBackend) search(q *Query, domain, lo, hi string, m *matcher, limit int) (Page, error) {
	var page Page
	err := b.db.View(func(tx *bbolt.Tx) error {
		logB := tx.Bucket(bucketLog)
		it := plan(tx, q, domain, lo, hi)
		scanned := 0
		for id, val, ok := it.next(); ok; id, val, ok = it.next() {
			scanned++
			if scanned > b.s.opts.MaxScan {
				page.Partial = true
				// Resume at this id, not after it.
				page.NextCursor = encodeCursor(nextID(id))
				return nil
			}
			var r *Record
			if it.fromIndex() {
				if !m.quick(val) {
					continue
				}
				v := logB.Get(idKey(id))
				if v == nil {
					continue // swept while indexed: cannot happen in one tx
				}
				var err error
				if r, err = decodeRecord(id, v); err != nil {
					continue
				}
			} else {
				var err error
				if r, err = decodeRecord(id, val); err != nil {
					continue
				}
			}
			if !m.match(r) {
				continue
			}
			if len(page.Records) == limit {
				// One more match exists: there is a next page.
				page.NextCursor = encodeCursor(page.Records[limit-1].ID)
				return nil
			}
			page.Records = append(page.Records, r)
		}
		return nil
	})
	return page, err
}

// nextID returns the smallest canonical id greater than id, so that a
// cursor made from it resumes at id itself.
func nextID(id string) string {
	b := []byte(id)
	for i := len(b) - 1; i >= 0; i-- {
		v := decodeIDChar(b[i])
		if v < 31 {
			b[i] = crockford[v+1]
			return string(b)
		}
		b[i] = '0'
	}
	return id
}

func (q *Query) check() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: limit %d: use 1 to %d", ErrBadQuery, q.Limit, MaxLimit)
	}
	for _, st := range q.Statuses {
		if st == 0 || st >= statusEnd {
			return fmt.Errorf("%w: status %d", ErrBadQuery, st)
		}
	}
	for _, v := range q.Verdicts {
		if v >= verdictEnd {
			return fmt.Errorf("%w: verdict %d", ErrBadQuery, v)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return fmt.Errorf("%w: the time range ends before it starts", ErrBadQuery)
	}
	return nil
}

// plan picks the candidate stream for q.
func plan(tx *bbolt.Tx, q *Query, domain, lo, hi string) idIter {
	idx := tx.Bucket(bucketIndex)
	one := func(kind byte, v string) idIter { return newIndexIter(idx, idxPrefix(kind, v), lo, hi) }
	switch {
	case q.MessageID != "":
		return one(idxMessageID, normMessageID(q.MessageID))
	case q.TraceToken != "":
		return one(idxTrace, normValue(q.TraceToken, false))
	case q.Identity != "":
		return one(idxIdentity, normValue(q.Identity, true))
	case q.User != "":
		return one(idxUser, normValue(q.User, true))
	case q.ClientIP.IsValid():
		return one(idxClientIP, q.ClientIP.Unmap().String())
	case domain != "":
		return one(idxDomain, normValue(domain, true))
	case len(q.Statuses) > 0 && !slices.Contains(q.Statuses, StatusAccepted):
		its := make([]idIter, 0, len(q.Statuses))
		for _, st := range q.Statuses {
			its = append(its, one(idxStatus, string(rune('0'+st))))
		}
		return newUnion(its)
	case len(q.Verdicts) > 0 && !slices.Contains(q.Verdicts, VerdictNone) && !slices.Contains(q.Verdicts, VerdictClean):
		its := make([]idIter, 0, len(q.Verdicts))
		for _, v := range q.Verdicts {
			its = append(its, one(idxVerdict, string(rune('0'+v))))
		}
		return newUnion(its)
	}
	return newLogIter(tx.Bucket(bucketLog), lo, hi)
}

// matcher checks records against a query.
type matcher struct {
	q          *Query
	domain     string
	domainHash uint32
	status     [statusEnd]bool
	verdict    [verdictEnd]bool
	sender     string
	rcpt       string
	subject    string
}

func newMatcher(q *Query, domain string) *matcher {
	m := &matcher{q: q, domain: domain, domainHash: domainHash(domain),
		sender: strings.ToLower(q.Sender), rcpt: strings.ToLower(q.Recipient), subject: strings.ToLower(q.Subject)}
	for _, st := range q.Statuses {
		m.status[st] = true
	}
	for _, v := range q.Verdicts {
		m.verdict[v] = true
	}
	return m
}

// quick checks the index entry value (status, verdict, domain hash).
func (m *matcher) quick(val []byte) bool {
	if len(val) != idxValLen {
		return true
	}
	st, v := Status(val[0]), Verdict(val[1])
	if len(m.q.Statuses) > 0 && (st >= statusEnd || !m.status[st]) {
		return false
	}
	if len(m.q.Verdicts) > 0 && (v >= verdictEnd || !m.verdict[v]) {
		return false
	}
	if m.domain != "" && be32(val[2:]) != m.domainHash {
		return false
	}
	return true
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func containsFold(s, sub string) bool {
	return sub == "" || strings.Contains(strings.ToLower(s), sub)
}

func (m *matcher) match(r *Record) bool {
	q := m.q
	switch {
	case len(q.Statuses) > 0 && !m.status[r.Status]:
		return false
	case len(q.Verdicts) > 0 && !m.verdict[r.Verdict]:
		return false
	case m.domain != "" && !strings.EqualFold(r.Domain, m.domain):
		return false
	case q.User != "" && !strings.EqualFold(r.User, q.User):
		return false
	case q.Identity != "" && !strings.EqualFold(r.Identity, q.Identity):
		return false
	case q.MessageID != "" && normMessageID(r.MessageID) != normMessageID(q.MessageID):
		return false
	case q.TraceToken != "" && r.TraceToken != q.TraceToken:
		return false
	case q.Partial && len(r.Partial) == 0:
		return false
	case q.ClientIP.IsValid() && r.ClientIP.Unmap() != q.ClientIP.Unmap():
		return false
	case !containsFold(r.Sender, m.sender), !containsFold(r.Subject, m.subject):
		return false
	}
	if m.rcpt != "" {
		for _, rc := range r.Recipients {
			if containsFold(rc.Address, m.rcpt) {
				return true
			}
		}
		return false
	}
	return true
}
