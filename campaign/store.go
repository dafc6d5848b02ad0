package campaign

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Verdict is the content verdict of a message as the caller counts it.
type Verdict uint8

// Verdicts counted per campaign.
const (
	Clean Verdict = iota
	Suspect
	Spam
	numVerdicts
)

// String returns "clean", "suspect" or "spam".
func (v Verdict) String() string {
	switch v {
	case Clean:
		return "clean"
	case Suspect:
		return "suspect"
	case Spam:
		return "spam"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Errors returned by the store.
var (
	// ErrNotFound: no campaign has this id (it was never seen, or all of
	// its fingerprints have left the store).
	ErrNotFound = errors.New("campaign: not found")
	// ErrEmpty: the fingerprint carries nothing to match on.
	ErrEmpty = errors.New("campaign: empty fingerprint")
	// ErrCorrupt: Decode found data it cannot read.
	ErrCorrupt = errors.New("campaign: corrupt state")
	// ErrNotEmpty: Decode was called on a store that already holds data.
	ErrNotEmpty = errors.New("campaign: store not empty")
)

// campaign is the state of one campaign. All fields are guarded by the
// store's mutex.
type campaign struct {
	id          string
	first, last int64 // Unix nanoseconds
	messages    uint64
	recipients  uint64
	blocked     uint64
	verdicts    [numVerdicts]uint64
	sampleTx    string
	confirmed   bool
	confirmedAt int64
	confirmedBy string
	refs        int32             // entries in the recent ring
	pins        int32             // entries in the confirmed ring
	lastSeqs    [Exemplars]uint64 // recent-ring sequence numbers + 1; 0 = none
	users       lru[userRec]
	idents      lru[identRec]
	usersSeen   uint64
	identsSeen  uint64
	prev, next  *campaign // by last seen; the store's tail is the most recent
	enc         uint32    // the campaign's index in the encoding, set by Encode
}

type userRec struct {
	last     int64
	identity string
	tx       string
}

type identRec struct {
	user       string
	messages   uint64
	recipients uint64
	last       int64
	tx         string
}

// Store is the bounded store of recent fingerprints and the campaigns they
// form. It is safe for concurrent use. Compute fingerprints outside it;
// every Store method holds one mutex for O(Bands) map operations plus the
// work its documentation states.
type Store struct {
	opt      Options
	minAgree int

	mu         sync.Mutex
	recent     ring
	confirmed  ring
	byID       map[string]*campaign
	head, tail *campaign // least and most recently seen
	idSeq      uint32
}

// New returns an empty store.
func New(opt Options) (*Store, error) {
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	return &Store{
		opt:       opt,
		minAgree:  int(math.Ceil(opt.Similarity * NumHashes)),
		recent:    newRing(opt.MaxEntries),
		confirmed: newRing(opt.MaxConfirmed),
		byID:      make(map[string]*campaign),
	}, nil
}

func clip(s string) string {
	if len(s) > maxString {
		return s[:maxString]
	}
	return s
}

func (s *Store) now(t time.Time) int64 {
	if t.IsZero() {
		t = s.opt.Now()
	}
	return t.UnixNano()
}

// Observe records a message's fingerprint and returns the campaign it
// belongs to and the signals it raises. An empty fingerprint is recorded
// nowhere and gives the zero Result. Cost: O(Bands + attachments) map
// operations, plus a walk of at most MaxEvidence users of the campaign once
// it has more than UserThreshold users.
func (s *Store) Observe(fp *Fingerprint, m Message) Result {
	if fp.Empty() {
		return Result{}
	}
	m.TxID, m.Identity, m.User = clip(m.TxID), clip(m.Identity), clip(m.User)
	if m.Verdict >= numVerdicts {
		m.Verdict = Suspect
	}
	now := s.now(m.Time)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)

	var res Result
	c, mt, _ := s.find(fp)
	if c == nil {
		c = s.newCampaign(now, fp)
		res.New = true
	} else {
		res.Similarity = float64(mt.agree) / NumHashes
	}
	res.Campaign = c.id
	blocked := c.confirmed

	// Record the message.
	c.messages++
	if m.Recipients > 0 {
		c.recipients += uint64(m.Recipients)
	}
	v := m.Verdict
	if blocked {
		v = Spam
		c.blocked++
	}
	c.verdicts[v]++
	if c.sampleTx == "" {
		c.sampleTx = m.TxID
	}
	if now > c.last {
		c.last = now
	}
	s.touch(c)
	s.addEntry(c, fp, now)

	if blocked {
		res.Signals = append(res.Signals, Signal{
			Kind: SignalConfirmed, Action: Block, Campaign: c.id,
			Count: 1, Threshold: 1, Similarity: res.Similarity, Crossed: true,
			Evidence: []Evidence{{TxID: m.TxID, Identity: m.Identity, User: m.User, Time: time.Unix(0, now)}},
			Reason:   fmt.Sprintf("near-duplicate (similarity %.2f) of confirmed spam campaign %s", res.Similarity, c.id),
		})
	}
	if !fp.Quoted {
		if sig, ok := s.recordUser(c, m, now); ok {
			sig.Similarity = res.Similarity
			res.Signals = append(res.Signals, sig)
		}
	}
	if sig, ok := s.recordIdentity(c, m, now); ok {
		sig.Similarity = res.Similarity
		res.Signals = append(res.Signals, sig)
	}
	return res
}

// find looks for the campaign fp belongs to: first among confirmed
// fingerprints, then among recent ones (by signature, else by exact text
// hash, else, for a message without a text fingerprint, by attachment
// digest). A confirmed campaign also matches by any attachment digest.
// covered reports a match in the confirmed set itself.
func (s *Store) find(fp *Fingerprint) (c *campaign, mt match, covered bool) {
	isConfirmed := func(c *campaign) bool { return c.confirmed }
	all := func(*campaign) bool { return true }
	if fp.HasSig {
		mt = s.confirmed.probeSig(&fp.Sig, s.minAgree, isConfirmed)
	} else if fp.HasExact {
		mt = s.confirmed.probeExact(fp.Exact, isConfirmed)
	}
	if mt.e == nil {
		mt = s.confirmed.probeAttach(fp.Attachments, isConfirmed)
	}
	if mt.e != nil {
		return mt.e.c, mt, true
	}
	if mt = s.recent.probeAttach(fp.Attachments, isConfirmed); mt.e != nil {
		return mt.e.c, mt, false
	}
	switch {
	case fp.HasSig:
		mt = s.recent.probeSig(&fp.Sig, s.minAgree, all)
	case fp.HasExact:
		mt = s.recent.probeExact(fp.Exact, all)
	default:
		mt = s.recent.probeAttach(fp.Attachments, all)
	}
	if mt.e != nil {
		return mt.e.c, mt, false
	}
	return nil, match{}, false
}

// expire drops recent fingerprints older than Window and confirmed ones
// older than ConfirmedTTL.
func (s *Store) expire(now int64) {
	cut := now - int64(s.opt.Window)
	for e := s.recent.oldest(); e != nil && e.at < cut; e = s.recent.oldest() {
		s.release(s.recent.pop(), false)
	}
	cut = now - int64(s.opt.ConfirmedTTL)
	for e := s.confirmed.oldest(); e != nil && e.at < cut; e = s.confirmed.oldest() {
		s.release(s.confirmed.pop(), true)
	}
}

// release drops one reference of c, and c itself once nothing refers to
// it.
func (s *Store) release(c *campaign, pin bool) {
	if pin {
		c.pins--
	} else {
		c.refs--
	}
	if c.refs <= 0 && c.pins <= 0 {
		s.unlinkCampaign(c)
		delete(s.byID, c.id)
	}
}

func entryOf(c *campaign, fp *Fingerprint, at int64) entry {
	e := entry{c: c, at: at}
	if fp.HasSig {
		e.sig = fp.Sig
		e.kind |= kindSig
	} else if fp.HasExact {
		e.exact = fp.Exact
		e.kind |= kindExact
	}
	if len(fp.Attachments) > 0 {
		n := min(len(fp.Attachments), MaxAttachments)
		e.attach = append([]Digest(nil), fp.Attachments[:n]...)
	}
	return e
}

// addEntry stores fp as c's newest recent fingerprint, evicting the oldest
// when the store is full. c's reference is taken first, so that evicting
// c's own last entry does not drop c.
func (s *Store) addEntry(c *campaign, fp *Fingerprint, at int64) {
	c.refs++
	for s.recent.len() >= s.recent.max {
		s.release(s.recent.pop(), false)
	}
	seq := s.recent.push(entryOf(c, fp, at))
	copy(c.lastSeqs[1:], c.lastSeqs[:Exemplars-1])
	c.lastSeqs[0] = seq + 1
}

// pin stores e in the confirmed set for c.
func (s *Store) pin(c *campaign, e entry) {
	c.pins++
	for s.confirmed.len() >= s.confirmed.max {
		s.release(s.confirmed.pop(), true)
	}
	s.confirmed.push(e)
}

// recordUser notes m's user for c and returns the user signal when the
// campaign has come from more than UserThreshold users within UserWindow.
func (s *Store) recordUser(c *campaign, m Message, now int64) (Signal, bool) {
	cut := now - int64(s.opt.UserWindow)
	wasIn := false
	u := c.users.get(m.User)
	if u == nil {
		u, _ = c.users.add(m.User, s.opt.MaxUsers)
		c.usersSeen++
	} else {
		wasIn = u.v.last >= cut
		c.users.touch(u)
	}
	if now > u.v.last {
		u.v.last = now
	}
	u.v.identity, u.v.tx = m.Identity, m.TxID
	k := s.opt.UserThreshold
	if c.users.n <= k {
		return Signal{}, false
	}
	// Walk from the most recent user back to the window's edge, at most
	// MaxEvidence users: the count is exact up to there.
	ev := make([]Evidence, 0, min(c.users.n, s.opt.MaxEvidence))
	for e := c.users.tail; e != nil && e.v.last >= cut; e = e.prev {
		if len(ev) == s.opt.MaxEvidence {
			break
		}
		ev = append(ev, Evidence{TxID: e.v.tx, Identity: e.v.identity, User: e.key, Time: time.Unix(0, e.v.last)})
	}
	if len(ev) <= k {
		return Signal{}, false
	}
	sat := len(ev) == s.opt.MaxEvidence
	return Signal{
		Kind: SignalUsers, Action: Lock, Campaign: c.id,
		Count: len(ev), Threshold: k, Window: s.opt.UserWindow, Saturated: sat,
		Crossed:  !wasIn && len(ev) == k+1,
		Evidence: ev,
		Reason: fmt.Sprintf("campaign %s sent by identities of %s%d distinct users within %s (threshold %d)",
			c.id, atLeast(sat), len(ev), s.opt.UserWindow, k),
	}, true
}

func atLeast(saturated bool) string {
	if saturated {
		return "at least "
	}
	return ""
}

// recordIdentity notes m's identity for c and returns the recipient
// signal when that identity has sent the campaign to more than
// RecipientThreshold recipients.
func (s *Store) recordIdentity(c *campaign, m Message, now int64) (Signal, bool) {
	e := c.idents.get(m.Identity)
	if e == nil {
		e, _ = c.idents.add(m.Identity, s.opt.MaxIdentities)
		c.identsSeen++
	} else {
		c.idents.touch(e)
	}
	before := e.v.recipients
	e.v.user = m.User
	e.v.messages++
	if m.Recipients > 0 {
		e.v.recipients += uint64(m.Recipients)
	}
	if now > e.v.last {
		e.v.last = now
	}
	e.v.tx = m.TxID
	n := uint64(s.opt.RecipientThreshold)
	if e.v.recipients <= n {
		return Signal{}, false
	}
	return Signal{
		Kind: SignalRecipients, Action: Report, Campaign: c.id,
		Count: int(min(e.v.recipients, math.MaxInt32)), Threshold: s.opt.RecipientThreshold,
		Crossed:  before <= n,
		Evidence: []Evidence{{TxID: m.TxID, Identity: m.Identity, User: m.User, Time: time.Unix(0, now)}},
		Reason: fmt.Sprintf("identity %s sent campaign %s to %d recipients in %d messages (threshold %d)",
			m.Identity, c.id, e.v.recipients, e.v.messages, s.opt.RecipientThreshold),
	}, true
}

// Confirm marks a campaign as confirmed spam or phishing: from now on its
// near-duplicates are blocked from any identity. Its most recent
// fingerprints (up to Exemplars) are kept for ConfirmedTTL, beyond the
// recent window. by names who confirmed (an operator, a scanner).
// Confirming a confirmed campaign is a no-op.
func (s *Store) Confirm(id, by string) error {
	now := s.now(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	c := s.byID[id]
	if c == nil {
		return ErrNotFound
	}
	s.confirm(c, clip(by), now)
	return nil
}

func (s *Store) confirm(c *campaign, by string, now int64) {
	if c.confirmed {
		return
	}
	c.confirmed, c.confirmedAt, c.confirmedBy = true, now, by
	for _, q := range c.lastSeqs {
		if q == 0 || !s.recent.live(q-1) {
			continue
		}
		e := *s.recent.at(s.recent.slot(q - 1))
		e.at = now
		e.attach = append([]Digest(nil), e.attach...)
		s.pin(c, e)
	}
}

// ConfirmMessage confirms the campaign of a message known to be spam or
// phishing (a scanner's verdict, an operator's report on a quarantined
// message): the campaign it matches, or a new campaign holding only it.
// The message's own fingerprint is kept in the confirmed set too, unless
// that set already matches it. It
// returns the campaign id, or ErrEmpty.
func (s *Store) ConfirmMessage(fp *Fingerprint, by string) (string, error) {
	if fp.Empty() {
		return "", ErrEmpty
	}
	now := s.now(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	c, _, covered := s.find(fp)
	if c == nil {
		c = s.newCampaign(now, fp)
		c.last = now
		s.touch(c)
	}
	// A message the confirmed set already matches adds nothing to it: a
	// scanner confirming every copy of one big campaign must not push the
	// other confirmed campaigns out.
	if !covered {
		s.pin(c, entryOf(c, fp, now))
	}
	s.confirm(c, clip(by), now)
	return c.id, nil
}

// Unconfirm withdraws a confirmation (an operator's mistake). The
// campaign's confirmed fingerprints stop matching at once and leave the
// store with their TTL.
func (s *Store) Unconfirm(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	if c == nil {
		return ErrNotFound
	}
	c.confirmed, c.confirmedAt, c.confirmedBy = false, 0, ""
	return nil
}

// Stats are the store's sizes, for metrics.
type Stats struct {
	Entries   int // recent fingerprints
	Confirmed int // confirmed fingerprints
	Campaigns int
}

// Stats returns the store's sizes. O(1).
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Entries: s.recent.len(), Confirmed: s.confirmed.len(), Campaigns: len(s.byID)}
}

// touch moves c to the most recently seen end of the store's list.
func (s *Store) touch(c *campaign) {
	if s.tail == c {
		return
	}
	s.unlinkCampaign(c)
	c.prev = s.tail
	if s.tail != nil {
		s.tail.next = c
	} else {
		s.head = c
	}
	s.tail = c
}

func (s *Store) unlinkCampaign(c *campaign) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if s.head == c {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if s.tail == c {
		s.tail = c.prev
	}
	c.prev, c.next = nil, nil
}
