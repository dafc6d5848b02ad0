package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/baseline"
	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
)

// campaignSaveEvery is how often the campaign store is written to the
// database (and at stop); a crash loses at most this much of it.
const campaignSaveEvery = time.Minute

// detectionIOTimeout bounds one read or write of the detectors' state.
const detectionIOTimeout = 10 * time.Second

// detection runs the signals of docs/baseline.md and docs/campaigns.md
// beside the counters of automatic locking, and keeps their state in the
// database across restarts. Its settings are read at start.
type detection struct {
	log   *slog.Logger
	store detectionStore
	now   func() time.Time

	base     *baseline.Detector // nil when off
	baseLock bool               // the lock level locks (action: lock)

	camp           *campaign.Store // nil when off
	blockConfirmed bool
	// fleet shares confirmations on the postgres backend; nil otherwise.
	fleet *campaignFleet

	// evicted holds profiles pushed out of memory and not yet written;
	// fetch reads it before the database.
	mu      sync.Mutex
	evicted map[string][]byte

	// On a fleet's shared store (postgres), merger takes the nodes'
	// deltas instead of whole profiles (docs/baseline.md, "In
	// outguard"); nil on bbolt. pending holds, under mu, the deltas of
	// profiles pushed out of memory and those a failed round could not
	// give back; reread the keys of the previous round, read again in
	// the next one so that this node sees what the others merged after
	// it. roundMu serialises rounds.
	merger  profileMerger
	pending map[string]*baseline.Delta
	reread  []string
	roundMu sync.Mutex
	// seen holds, under seenMu, the last message of each identity this
	// node observed since the last round (prevSeen: in the round before),
	// for a lock that a round's merge finds due; onFleetLock takes it.
	seenMu      sync.Mutex
	seen        map[string]lastObservation
	prevSeen    map[string]lastObservation
	onFleetLock func(lastObservation, baseline.Verdict)

	stop chan struct{}
	done chan struct{}
}

func newDetection(cfg *config.Config, store detectionStore, log *slog.Logger, now func() time.Time) (*detection, error) {
	d := &detection{log: log, store: store, now: now, evicted: map[string][]byte{},
		pending: map[string]*baseline.Delta{}, seen: map[string]lastObservation{},
		stop: make(chan struct{}), done: make(chan struct{})}
	d.merger, _ = store.(profileMerger)
	var err error
	bc := cfg.Identity.Baseline
	if *bc.Enabled {
		d.baseLock = bc.Action == "lock"
		opts := baseline.Options{
			MaxProfiles:   bc.MaxProfiles,
			Warmup:        bc.Warmup.D(),
			SuspectFactor: bc.SuspectFactor,
			LockFactor:    bc.LockFactor,
			VolumeFloor:   baseline.Limits{Suspect: bc.MessagesFloor.Suspect, Lock: bc.MessagesFloor.Lock},
			WarmupVolume:  baseline.Limits{Suspect: bc.NewIdentityMessages.Suspect, Lock: bc.NewIdentityMessages.Lock},
			OnEvict:       d.onEvict,
			Fetch:         d.fetch,
		}
		if d.merger != nil {
			// The shared profile is the fleet's: a node hands over what
			// it counted, never its whole copy.
			opts.OnEvict, opts.Deltas, opts.OnEvictDelta = nil, true, d.onEvictDelta
		}
		d.base, err = baseline.New(opts)
		if err != nil {
			return nil, fmt.Errorf("identity.baseline: %w", err)
		}
	}
	cc := cfg.Identity.Campaigns
	if *cc.Enabled {
		d.blockConfirmed = *cc.BlockConfirmed
		d.camp, err = campaign.New(campaign.Options{
			MaxEntries:         cc.MaxFingerprints,
			Window:             cc.Retention.D(),
			UserThreshold:      cc.Users,
			UserWindow:         cc.Window.D(),
			RecipientThreshold: cc.Recipients,
			Now:                now,
		})
		if err != nil {
			return nil, fmt.Errorf("identity.campaigns: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
		state, err := store.campaigns(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("identity.campaigns: reading the saved state: %w", err)
		}
		if state != nil {
			if err := d.camp.Decode(state); err != nil {
				// A damaged snapshot costs the recent history, not the start.
				log.Warn("campaign state unreadable, starting afresh", "err", err)
			}
		}
	}
	go d.loop(cfg.Identity.FlushInterval.D())
	return d, nil
}

// shareCampaigns confirms on this node what the fleet confirmed, and
// shares this node's confirmations, through pool (the postgres backend).
func (d *detection) shareCampaigns(pool *pgxpool.Pool, node string) {
	if d.camp == nil {
		return
	}
	d.fleet = newCampaignFleet(pool, node, d.camp, d.log.With("node_name", node))
}

// sharedConfirmation tells the fleet that campaign id was confirmed (or
// withdrawn) on this node, by its exemplars. A no-op on one node.
func (d *detection) sharedConfirmation(id, by string, confirmed bool) {
	if d == nil || d.fleet == nil {
		return
	}
	fps, err := d.camp.ExemplarFingerprints(id)
	if err != nil {
		return
	}
	action := "confirm"
	if !confirmed {
		action = "unconfirm"
	}
	d.fleet.publish(action, by, fps)
}

// onEvict keeps a profile pushed out of memory until the next save. It
// runs under a shard lock of the detector: no database work here.
func (d *detection) onEvict(key string, p baseline.Profile) {
	b, err := p.MarshalBinary()
	if err != nil {
		return
	}
	d.mu.Lock()
	d.evicted[key] = b
	d.mu.Unlock()
}

// onEvictDelta keeps the delta of a profile pushed out of memory for the
// next round. It runs under a shard lock of the detector.
func (d *detection) onEvictDelta(key string, dl baseline.Delta) {
	d.mu.Lock()
	d.keepPending(key, &dl)
	d.mu.Unlock()
}

// keepPending adds dl to key's pending delta. The caller holds d.mu.
func (d *detection) keepPending(key string, dl *baseline.Delta) {
	if p := d.pending[key]; p != nil {
		p.Add(*dl)
	} else {
		c := *dl
		d.pending[key] = &c
	}
}

// fetch reads a profile that is not in memory. On a fleet's store, the
// delta of this node not merged yet is added to the shared profile.
func (d *detection) fetch(key string) (baseline.Profile, bool) {
	if d.merger != nil {
		p, ok := d.fetchStored(key)
		d.mu.Lock()
		if dl := d.pending[key]; dl != nil {
			d.base.Merge(&p, dl)
			ok = true
		}
		d.mu.Unlock()
		return p, ok
	}
	d.mu.Lock()
	b, ok := d.evicted[key]
	d.mu.Unlock()
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
		var err error
		b, ok, err = d.store.profile(ctx, key)
		cancel()
		if err != nil {
			// The identity starts a new profile, as an unknown one does.
			d.log.Warn("reading a baseline profile failed", "err", err)
		}
	}
	return decodeProfile(b, ok)
}

// fetchStored reads key's profile from the database.
func (d *detection) fetchStored(key string) (baseline.Profile, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	b, ok, err := d.store.profile(ctx, key)
	cancel()
	if err != nil {
		d.log.Warn("reading a baseline profile failed", "err", err)
	}
	return decodeProfile(b, ok)
}

func decodeProfile(b []byte, ok bool) (baseline.Profile, bool) {
	var p baseline.Profile
	if !ok || p.UnmarshalBinary(b) != nil {
		return baseline.Profile{}, false
	}
	return p, true
}

func (d *detection) loop(every time.Duration) {
	defer close(d.done)
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastCampaigns := d.now()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.saveProfiles()
			if d.now().Sub(lastCampaigns) >= campaignSaveEvery {
				d.saveCampaigns()
				lastCampaigns = d.now()
			}
		}
	}
}

// saveProfiles writes the profiles changed since the last save and those
// evicted from memory, in one transaction.
func (d *detection) saveProfiles() {
	if d.base == nil {
		return
	}
	if d.merger != nil {
		d.mergeRound()
		return
	}
	batch := map[string][]byte{}
	d.base.Snapshot(true, func(key string, p *baseline.Profile) error {
		b, err := p.MarshalBinary()
		if err == nil {
			batch[key] = b
		}
		return err
	})
	d.mu.Lock()
	evicted := d.evicted
	d.evicted = map[string][]byte{}
	d.mu.Unlock()
	for k, v := range evicted {
		if _, newer := batch[k]; !newer {
			batch[k] = v
		}
	}
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	err := d.store.putProfiles(ctx, batch)
	cancel()
	if err != nil {
		d.log.Error("saving baseline profiles failed", "profiles", len(batch), "err", err)
		// Keep the evicted ones for the next round; the others are
		// marked changed again by their next message.
		d.mu.Lock()
		for k, v := range evicted {
			if _, ok := d.evicted[k]; !ok {
				d.evicted[k] = v
			}
		}
		d.mu.Unlock()
	}
}

// mergeRound merges what this node counted since the last round into the
// fleet's shared profiles, and takes back the merged profiles, with those
// of the previous round's keys, so that this node's copies carry the
// fleet's counts (docs/baseline.md, "In outguard"). A failed round keeps
// its deltas for the next.
func (d *detection) mergeRound() {
	d.roundMu.Lock()
	defer d.roundMu.Unlock()
	d.mu.Lock()
	deltas := d.pending
	d.pending = map[string]*baseline.Delta{}
	d.mu.Unlock()
	d.base.Deltas(func(key string, dl *baseline.Delta) {
		if older := deltas[key]; older != nil {
			older.Add(*dl)
		} else {
			deltas[key] = dl
		}
	})
	reread := d.reread[:0:0]
	for _, k := range d.reread {
		if deltas[k] == nil {
			reread = append(reread, k)
		}
	}
	if len(deltas) == 0 && len(reread) == 0 {
		d.reread = nil
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	var locks map[string]baseline.Verdict
	shared, err := d.merger.mergeProfiles(ctx, deltas, reread, func(key string, p *baseline.Profile, dl *baseline.Delta) {
		if v := d.base.Merge(p, dl); v.Escalated {
			if locks == nil {
				locks = map[string]baseline.Verdict{}
			}
			locks[key] = v
		}
	})
	cancel()
	d.reread = d.reread[:0]
	for k, p := range shared {
		d.base.Apply(k, p)
		if deltas[k] != nil {
			d.reread = append(d.reread, k)
		}
	}
	if err != nil {
		d.log.Error("merging baseline profiles with the fleet failed; their counts wait for the next round", "profiles", len(deltas)-len(d.reread), "err", err)
		// Requeue takes a shard's lock, under which OnEvictDelta takes
		// d.mu: not under d.mu here.
		var gone []string
		for k, dl := range deltas {
			if _, merged := shared[k]; merged {
				continue
			}
			if !d.base.Requeue(k, *dl) {
				gone = append(gone, k)
			}
		}
		d.mu.Lock()
		for _, k := range gone {
			d.keepPending(k, deltas[k])
		}
		d.mu.Unlock()
	}
	// The fleet's count reached the lock level in this node's merge:
	// it locks, once for the fleet.
	d.seenMu.Lock()
	seen, prev := d.seen, d.prevSeen
	d.seen, d.prevSeen = map[string]lastObservation{}, seen
	d.seenMu.Unlock()
	for k, v := range locks {
		if _, merged := shared[k]; !merged || d.onFleetLock == nil {
			continue
		}
		o, ok := seen[k]
		if !ok {
			o, ok = prev[k]
		}
		if ok {
			d.onFleetLock(o, v)
		}
	}
}

func (d *detection) saveCampaigns() {
	if d.camp == nil {
		return
	}
	state := d.camp.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), detectionIOTimeout)
	err := d.store.putCampaigns(ctx, state)
	cancel()
	if err != nil {
		d.log.Error("saving the campaign store failed", "bytes", len(state), "err", err)
	}
}

// Close saves everything and stops the saving loop.
func (d *detection) Close() {
	select {
	case <-d.stop:
		return
	default:
	}
	close(d.stop)
	<-d.done
	if d.fleet != nil {
		d.fleet.close()
	}
	d.saveProfiles()
	d.saveCampaigns()
}

// campaignJudgement is what the campaign store says of one message.
type campaignJudgement struct {
	// Campaign is the id of the message's campaign ("" without one).
	Campaign string
	// Block is a confirmed campaign's signal: refuse the message.
	Block *campaign.Signal
	// Lock is the campaign's user signal: lock the identities behind it
	// (all of them when it has just crossed, else the sender's).
	Lock *campaign.Signal
	// Report is a report-only campaign signal, for the log.
	Report *campaign.Signal
}

// judgeCampaign fingerprints a classified message and records it with its
// campaign. A scanner's spam or phishing verdict confirms the campaign:
// its near-duplicates are then refused from any identity.
func (d *detection) judgeCampaign(user, ident, txID string, rcpts []string, fm *filter.Message, v filter.Verdict) campaignJudgement {
	var j campaignJudgement
	if d == nil || d.camp == nil || fm == nil {
		return j
	}
	fp := campaign.Compute(campaignInput(fm, rcpts))
	verdict := campaign.Clean
	switch {
	case v.Class != filter.Clean:
		verdict = campaign.Spam
	case v.Band == filter.BandSuspect:
		verdict = campaign.Suspect
	}
	res := d.camp.Observe(&fp, campaign.Message{TxID: txID, Identity: ident, User: user, Recipients: len(rcpts), Verdict: verdict})
	j.Campaign = res.Campaign
	for i := range res.Signals {
		s := &res.Signals[i]
		switch {
		case s.Action == campaign.Block && d.blockConfirmed && j.Block == nil:
			j.Block = s
		case s.Action == campaign.Lock && j.Lock == nil:
			j.Lock = s
		case s.Action == campaign.Report && s.Crossed && j.Report == nil:
			j.Report = s
		}
	}
	if (v.Class == filter.Spam || v.Class == filter.Phishing) && res.Campaign != "" && d.blockConfirmed {
		by := "scanner:" + v.Class.String()
		// The fleet hears of fingerprints the confirmed set lacked, not
		// of every copy of a confirmed campaign.
		fresh := d.fleet != nil && !d.camp.Covers(&fp)
		if _, err := d.camp.ConfirmMessage(&fp, by); err == nil && fresh {
			d.fleet.publish("confirm", by, []campaign.Fingerprint{fp})
		}
	}
	return j
}

// setFleetLock sets what a round does with a lock its merge found due.
func (d *detection) setFleetLock(fn func(lastObservation, baseline.Verdict)) {
	d.roundMu.Lock()
	d.onFleetLock = fn
	d.roundMu.Unlock()
}

// lastObservation is the last message of an identity a node observed:
// whom to lock, by whose policy, with which transaction as evidence.
type lastObservation struct {
	Domain, Identity, User, TxID string
	Policy                       identity.Policy
}

// observeBaseline counts a message in its identity's profile and returns
// the hour's verdict. On a fleet's store it also notes o for a lock that
// the next round may find due.
func (d *detection) observeBaseline(o lastObservation, rcpts []string) baseline.Verdict {
	if d == nil || d.base == nil || o.Identity == "" {
		return baseline.Verdict{}
	}
	key := strings.ToLower(o.Domain) + "\x00" + strings.ToLower(o.Identity)
	if d.merger != nil {
		d.seenMu.Lock()
		d.seen[key] = o
		d.seenMu.Unlock()
	}
	return d.base.Observe(key, d.now(), len(rcpts), recipientDomains(rcpts))
}

// campaignInput is what the fingerprint reads of a message: its subject
// and text, the words that vary per recipient (envelope local parts and
// the To and Cc display names), and its real attachments.
func campaignInput(fm *filter.Message, rcpts []string) campaign.Input {
	in := campaign.Input{Text: fm.BodyText}
	in.Subject, _ = fm.Header.Subject()
	for _, r := range rcpts {
		if at := strings.LastIndexByte(r, '@'); at > 0 {
			in.PerRecipient = append(in.PerRecipient, r[:at])
		}
	}
	for _, key := range []string{"To", "Cc"} {
		if list, err := fm.Header.AddressList(key); err == nil {
			for _, a := range list {
				in.PerRecipient = append(in.PerRecipient, a.Name, localPart(a))
			}
		}
	}
	for _, p := range fm.Parts {
		if p.IsAttachment() && !strings.HasPrefix(p.ContentType, "image/") {
			in.Attachments = append(in.Attachments, campaign.AttachmentDigest(p.Data))
		}
	}
	return in
}

func localPart(a *mail.Address) string {
	if at := strings.LastIndexByte(a.Address, '@'); at > 0 {
		return a.Address[:at]
	}
	return a.Address
}

func recipientDomains(rcpts []string) []string {
	out := make([]string, 0, len(rcpts))
	for _, r := range rcpts {
		if at := strings.LastIndexByte(r, '@'); at >= 0 && at < len(r)-1 {
			out = append(out, strings.ToLower(r[at+1:]))
		}
	}
	return out
}

// baselineEvidence is the evidence of a baseline lock: the signal, the
// hour's count against the threshold, and the numbers behind them.
func baselineEvidence(v baseline.Verdict, user, txID string) *identity.Evidence {
	return &identity.Evidence{
		User:      user,
		Counter:   "baseline:" + string(v.Signal),
		Count:     int(v.Value),
		Threshold: int(lockThreshold(v)),
		Window:    time.Hour,
		TxIDs:     []string{txID},
		Counts:    map[string]int{"usual": int(v.Baseline + 0.5), "peak": int(v.Peak + 0.5)},
		At:        v.Hour,
	}
}

// lockThreshold is the count from which the hour reached the lock level:
// the floor, or the factors times the usual and peak counts.
func lockThreshold(v baseline.Verdict) float64 {
	t := v.LockAt.Floor
	if !v.Warmup {
		t = max(t, v.LockAt.Factor*max(v.Baseline, 1), v.LockAt.PeakFactor*max(v.Peak, 1))
	}
	return t
}

// lockCampaign acts on a campaign's user signal: when it has just crossed,
// every identity behind it is locked, each under its own user's policy
// (monitor mode records it instead); afterwards each further sender of
// the campaign (user, domain, ident, with the transaction txID) is.
func (p *pipeline) lockCampaign(ctx context.Context, s *campaign.Signal, user, domain, ident, txID string) {
	st := p.state.Load()
	type target struct{ user, domain, ident, tx string }
	var targets []target
	if s.Crossed {
		seen := map[string]bool{}
		for _, e := range s.Evidence {
			up := st.user(e.User)
			if up == fallbackUser || e.Identity == "" || seen[up.domain+"\x00"+e.Identity] {
				continue
			}
			seen[up.domain+"\x00"+e.Identity] = true
			targets = append(targets, target{e.User, up.domain, e.Identity, e.TxID})
		}
	} else {
		targets = append(targets, target{user, domain, ident, txID})
	}
	for _, t := range targets {
		if _, locked := p.ids.CheckIdentity(t.domain, t.ident); locked {
			continue
		}
		ev := &identity.Evidence{User: t.user, Counter: s.Kind.String(), Count: s.Count, Threshold: s.Threshold,
			Window: s.Window, TxIDs: []string{t.tx}, Counts: map[string]int{"users": s.Count}, At: p.now()}
		out, err := p.ids.Signal(ctx, t.domain, t.ident, ev, s.Reason, st.user(t.user).policy)
		switch {
		case err != nil && !errors.Is(err, identity.ErrAlreadyLocked):
			p.log.Error("locking a campaign's identity failed", "campaign", s.Campaign, "identity", t.ident, "err", err)
		case out.Locked != nil:
			p.log.Warn("identity locked automatically", "by", s.Kind.String(), "campaign", s.Campaign, "domain", t.domain, "identity", t.ident, "reason", s.Reason)
		case out.WouldLock != nil:
			p.log.Warn("identity would have been locked (monitor mode)", "by", s.Kind.String(), "campaign", s.Campaign, "domain", t.domain, "identity", t.ident)
		}
	}
}
