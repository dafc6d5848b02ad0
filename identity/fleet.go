package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of the fleet options.
const (
	DefaultRoundInterval  = 200 * time.Millisecond
	DefaultResyncInterval = time.Minute
)

// counterTried is the fleet counter of the recipients tried, the
// denominator of CounterRefused's share.
const counterTried = int(numCounters)

// OpenPostgres opens a Manager on the PostgreSQL store a fleet of nodes
// shares (store.backend postgres, docs/config-store.md): pool is migrated
// (internal/pgdb), node is this node's node_name. Lock checks stay in
// memory: the index is kept current by LISTEN/NOTIFY and resynchronised
// in full every Options.ResyncInterval; its age is the metric
// outguard_lock_index_age_seconds. Window increments are sent in rounds
// (Options.RoundInterval) that bring back the other nodes' counts, and a
// threshold crossed by the fleet's total locks the identity.
func OpenPostgres(pool *pgxpool.Pool, node string, opts Options) (*Manager, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: nil pool", ErrInvalid)
	}
	if node == "" {
		return nil, fmt.Errorf("%w: a node name is required", ErrInvalid)
	}
	if opts.RoundInterval == 0 {
		opts.RoundInterval = DefaultRoundInterval
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	st := newPgStore(pool, node)
	m, err := openWith(st, opts, st)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.fleetCancel = cancel
	m.fleetRoundTimeout = st.roundTimeout
	m.fleetDone = make(chan struct{})
	go func() {
		defer close(m.fleetDone)
		st.listen(ctx, opts.ResyncInterval, listener{
			changed: m.refreshKey,
			reset:   m.applyReset,
			resync:  m.resync,
			fresh:   m.markFresh,
			failed: func(err error) {
				m.metrics.listenErrors.Inc()
				m.log.Warn("identity: lock notifications interrupted; lock checks use the last known index until they resume", "err", err)
			},
		})
	}()
	if opts.RoundInterval > 0 {
		m.roundDone = make(chan struct{})
		go m.roundLoop(ctx)
	}
	return m, nil
}

// fleetStore is what the PostgreSQL backend adds for a fleet.
type fleetStore interface {
	exchange(ctx context.Context, incs []fleetInc, qs []fleetQuery) ([]fleetTotal, error)
	resetCounters(ctx context.Context, key string, counters []int, at int64) error
	expireCounts(ctx context.Context, now int64) error
	scanUnsettled(ctx context.Context, fn func(string, *record) (bool, error)) error
	scanResets(ctx context.Context, fn func(resetNotice)) error
}

// applyReset drops this node's entries of counters another node reset
// after a crossing.
func (m *Manager) applyReset(n resetNotice) {
	key := n.Domain + "\x00" + n.Identity
	sh := m.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.windows[key]
	if w == nil {
		return
	}
	for _, c := range n.Counters {
		if c < 0 || c > counterTried || n.At <= w.resetSeen[c] {
			continue
		}
		w.applyFleet(c, fleetTotal{reset: n.At}, 0)
	}
	sh.dirty[key] = w
}

// markFresh records that the index was current at t.
func (m *Manager) markFresh(t time.Time) { m.indexFresh.Store(t.UnixNano()) }

// indexAge is how old the lock index may be: 0 on bbolt, where this
// process makes every change.
func (m *Manager) indexAge() time.Duration {
	if m.fleet == nil {
		return 0
	}
	f := m.indexFresh.Load()
	if f == 0 {
		return time.Since(m.opened)
	}
	return time.Since(time.Unix(0, f))
}

// refreshKey reloads one target's record after another node changed it.
func (m *Manager) refreshKey(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	r, err := m.store.getRecord(ctx, key)
	if err != nil {
		m.log.Warn("identity: reading a lock changed by another node; the next resync retries", "err", err)
		return
	}
	if r != nil && r.Lock != nil && !r.Settled {
		m.index.Store(key, r.Lock)
	} else {
		m.index.Delete(key)
	}
}

// resync replaces the index with the locks not settled in the store.
func (m *Manager) resync() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	// Resets first, so that a lock seen here comes with the reset of the
	// crossing that made it, even if its notification was missed while
	// this node was not listening.
	if err := m.fleet.scanResets(ctx, m.applyReset); err != nil {
		return fmt.Errorf("identity: resynchronising counter resets: %w", err)
	}
	seen := map[string]*Lock{}
	err := m.fleet.scanUnsettled(ctx, func(key string, r *record) (bool, error) {
		if r.Lock != nil {
			seen[key] = r.Lock
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("identity: resynchronising the lock index: %w", err)
	}
	for k, l := range seen {
		m.index.Store(k, l)
	}
	m.index.Range(func(k, _ any) bool {
		if _, ok := seen[k.(string)]; !ok {
			m.index.Delete(k)
		}
		return true
	})
	m.metrics.resyncs.Inc()
	return nil
}

func (m *Manager) roundLoop(ctx context.Context) {
	defer close(m.roundDone)
	t := time.NewTicker(m.opts.RoundInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, m.fleetRoundTimeout)
			err := m.round(rctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				m.metrics.flushErrors.Inc()
				m.log.Warn("identity: fleet counting round failed; its increments are retried", "err", err)
			}
		}
	}
}

// pendKey names one pending increment.
type pendKey struct {
	key     string
	counter int
	slot    int64
}

// pendVal is a pending increment and when its slot leaves its window.
type pendVal struct {
	n       int64
	expires int64
}

// countFleet queues o's increments of w for the next round. The caller
// holds the shard's mutex.
func (sh *shard) countFleet(key string, now int64, add *[numCounters]int64, tried int64, limits *Thresholds) {
	if sh.pending == nil {
		sh.pending = map[pendKey]pendVal{}
		sh.touched = map[string]bool{}
	}
	inc := func(c int, win time.Duration, n int64) {
		width := slotWidth(win)
		slot := now - now%width
		k := pendKey{key, c, slot}
		v := sh.pending[k]
		v.n += n
		v.expires = slot + int64(win) + width
		sh.pending[k] = v
	}
	for c := range numCounters {
		if add[c] > 0 && limits[c].Count > 0 {
			inc(int(c), limits[c].Window, add[c])
		}
	}
	if l := limits[CounterRefused]; tried > 0 && l.Count > 0 && l.Share > 0 {
		inc(counterTried, l.Window, tried)
	}
	sh.touched[key] = true
}

// fleetCrossing is a threshold the fleet's total reached in a round.
type fleetCrossing struct {
	key    string
	target Target
	ev     *Evidence
	resets []int
	policy Policy
}

// round sends the increments queued since the last round and reads the
// other nodes' counts of the identities they touch, in one round trip,
// then locks those whose fleet-wide count reached a threshold.
func (m *Manager) round(ctx context.Context) error {
	if m.fleet == nil {
		return nil
	}
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	now := m.now()
	nowNs := now.UnixNano()
	var incs []fleetInc
	var qs []fleetQuery
	touched := map[string]bool{}
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, v := range sh.pending {
			incs = append(incs, fleetInc{key: k.key, counter: k.counter, slot: k.slot, n: v.n, expires: v.expires})
		}
		// The keys of the previous round are asked again: the batch's
		// insert and select run in one implicit transaction, so two
		// nodes in the same instant may each miss the other's
		// increments; one round later both are committed.
		if sh.touched == nil && len(sh.prevTouched) > 0 {
			sh.touched = map[string]bool{}
		}
		for key := range sh.prevTouched {
			if !sh.touched[key] {
				sh.touched[key] = false
			}
		}
		prev := map[string]bool{}
		for key, fresh := range sh.touched {
			if fresh {
				prev[key] = true
			}
			touched[key] = true
			w := sh.windows[key]
			if w == nil {
				continue
			}
			for c := range numCounters {
				if w.Limits[c].Count > 0 {
					qs = append(qs, fleetQuery{key: key, counter: int(c), cutoff: nowNs - int64(w.Limits[c].Window)})
				}
			}
			if l := w.Limits[CounterRefused]; l.Count > 0 && l.Share > 0 {
				qs = append(qs, fleetQuery{key: key, counter: counterTried, cutoff: nowNs - int64(l.Window)})
			}
		}
		sh.pending, sh.touched, sh.prevTouched = nil, nil, prev
		sh.mu.Unlock()
	}
	if len(incs) == 0 && len(qs) == 0 {
		return nil
	}
	totals, err := m.fleet.exchange(ctx, incs, qs)
	if err != nil {
		// Put the increments back for the next round, but those whose
		// slot has left its window: they would count for nothing, and
		// dropping them bounds what waits while the database is down.
		for _, in := range incs {
			if in.expires < nowNs {
				continue
			}
			sh := m.shardOf(in.key)
			sh.mu.Lock()
			if sh.pending == nil {
				sh.pending, sh.touched = map[pendKey]pendVal{}, map[string]bool{}
			}
			k := pendKey{in.key, in.counter, in.slot}
			v := sh.pending[k]
			v.n += in.n
			v.expires = max(v.expires, in.expires)
			sh.pending[k] = v
			sh.touched[in.key] = true
			sh.mu.Unlock()
		}
		return err
	}
	m.metrics.rounds.Inc()
	var crossings []fleetCrossing
	for i := 0; i < len(qs); {
		key := qs[i].key
		j := i
		for j < len(qs) && qs[j].key == key {
			j++
		}
		sh := m.shardOf(key)
		sh.mu.Lock()
		if w := sh.windows[key]; w != nil {
			for k := i; k < j; k++ {
				w.applyFleet(qs[k].counter, totals[k], nowNs)
			}
			for c := range numCounters {
				if !w.reachedFleet(c) {
					continue
				}
				ev := w.fleetEvidence(c, now)
				resets := w.resetFleet(c)
				crossings = append(crossings, fleetCrossing{key: key, target: IdentityTarget(w.Domain, w.Identity), ev: ev, resets: resets, policy: w.policy})
				break
			}
		}
		sh.mu.Unlock()
		i = j
	}
	var errs []error
	for _, c := range crossings {
		if err := m.fleet.resetCounters(ctx, c.key, c.resets, nowNs); err != nil {
			errs = append(errs, err)
		}
		if _, err := m.crossed(ctx, c.target, c.ev, "", c.policy); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// applyFleet takes in the other nodes' count of counter c (counterTried
// for the recipients tried), and a fleet-wide reset: local entries up to
// it no longer count.
func (w *window) applyFleet(c int, t fleetTotal, now int64) {
	if t.reset > w.resetSeen[c] {
		w.resetSeen[c] = t.reset
		if c == counterTried {
			w.Tried, w.triedSum = dropThrough(w.Tried, w.triedSum, t.reset)
		} else {
			w.Series[c], w.sum[c] = dropThrough(w.Series[c], w.sum[c], t.reset)
		}
	}
	w.remote[c] = t.n
}

// dropThrough drops the entries of s at or before at, and returns s and
// its new sum.
func dropThrough(s []entry, sum, at int64) ([]entry, int64) {
	i := 0
	for i < len(s) && s[i].At <= at {
		sum -= s[i].N
		i++
	}
	if i == 0 {
		return s, sum
	}
	return append(s[:0], s[i:]...), sum
}

// reachedFleet reports whether counter c is at its threshold counting
// the other nodes, when they count something.
func (w *window) reachedFleet(c Counter) bool {
	l := w.Limits[c]
	if l.Count == 0 || w.remote[c] == 0 || w.sum[c]+w.remote[c] < int64(l.Count) {
		return false
	}
	if c == CounterRefused && l.Share > 0 {
		return float64(w.sum[c]+w.remote[c]) >= l.Share*float64(w.triedSum+w.remote[counterTried])
	}
	return true
}

// fleetEvidence is evidence for a fleet-wide crossing of c: the counts
// are the fleet's, the transaction ids this node's.
func (w *window) fleetEvidence(c Counter, now time.Time) *Evidence {
	ev := w.evidence(c, now)
	ev.Count += int(w.remote[c])
	for i := range numCounters {
		ev.Counts[i.String()] += int(w.remote[i])
	}
	if _, ok := ev.Counts["tried"]; ok {
		ev.Counts["tried"] += int(w.remote[counterTried])
	}
	return ev
}

// resetFleet starts c afresh (reset) and forgets the other nodes' counts
// of what it resets; it returns the fleet counters to reset in the store.
func (w *window) resetFleet(c Counter) []int {
	w.reset(c)
	out := []int{int(c)}
	if c == CounterRefused || c.refusalClass() {
		out = []int{int(CounterRefused), int(CounterRefusedPolicy), int(CounterRefusedUnknown), int(CounterRefusedOther), counterTried}
	}
	for _, r := range out {
		w.remote[r] = 0
	}
	return out
}
