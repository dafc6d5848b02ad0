package identity

import (
	"sync"
	"time"
)

// volumeSlots is how many time slots a volume counter's window is cut
// into: messages and recipients are counted per slot (at least one
// second), so their memory is bounded by the slot count whatever the
// sending rate, at the cost of a granularity of window/volumeSlots.
const volumeSlots = 600

// MaxVolumeEvidence bounds the transaction ids named in the evidence of a
// messages or recipients crossing: the most recent ones.
const MaxVolumeEvidence = 20

// shard holds the windows of the identities whose key hashes to it.
type shard struct {
	mu      sync.Mutex
	windows map[string]*window
	// dirty holds the windows changed since the last flush; a nil value
	// marks a window evicted from memory, to delete from the store.
	dirty map[string]*window
	// pending holds, on PostgreSQL, the increments not yet sent to the
	// fleet's counts, and touched the windows they belong to.
	pending map[pendKey]pendVal
	touched map[string]bool
	// prevTouched are the windows touched in the previous round, asked
	// once more (see Manager.round).
	prevTouched map[string]bool
}

// entry is one observation (event counters: N is 1 and Tx names it) or one
// time slot (volume counters: N adds up the slot, Tx is empty). At is Unix
// nanoseconds: the observation time, or the slot's start.
type entry struct {
	At int64  `json:"t"`
	N  int64  `json:"n"`
	Tx string `json:"x,omitempty"`
}

// window is the sliding-window state of one identity.
type window struct {
	Domain   string `json:"domain"`
	Identity string `json:"identity"`
	// User is the outgoing user last seen sending as this identity.
	User string `json:"user,omitempty"`
	// Last is the time of the last observation (Unix nanoseconds).
	Last int64 `json:"last"`
	// Limits are the thresholds of the last observation, used by Usage
	// and to prune after a restart.
	Limits Thresholds `json:"limits"`
	// Series holds each counter's entries, oldest first.
	Series [numCounters][]entry `json:"series"`
	// Recent names the latest message transactions, oldest first, for
	// the evidence of volume counters.
	Recent []entry `json:"recent,omitempty"`
	// Tried counts the recipients the next hop was asked for, in
	// CounterRefused's window and slots: the denominator of its share.
	Tried []entry `json:"tried,omitempty"`

	sum      [numCounters]int64
	triedSum int64
	// remote holds the other nodes' counts in each counter's window as
	// of the last fleet round (counterTried: recipients tried), and
	// resetSeen the last fleet-wide reset applied (PostgreSQL only).
	remote    [numCounters + 1]int64
	resetSeen [numCounters + 1]int64
	// policy is the policy of the last observation, for a crossing found
	// in a fleet round.
	policy Policy
}

// amounts returns what an observation adds to each counter.
func (o *Observation) amounts() [numCounters]int64 {
	var a [numCounters]int64
	switch o.Class {
	case ClassSpam:
		a[CounterSpam] = 1
	case ClassPhishing:
		a[CounterPhishing] = 1
	case ClassVirus:
		a[CounterVirus] = 1
	}
	if o.Class != "" {
		a[CounterMessages] = 1
		a[CounterRecipients] = int64(o.Recipients)
	}
	if o.Complaint {
		a[CounterComplaints] = 1
	}
	if o.Suspect && o.Class == ClassClean {
		a[CounterSuspect] = 1
	}
	a[CounterRefusedPolicy] = int64(o.Refused.Policy)
	a[CounterRefusedUnknown] = int64(o.Refused.Unknown)
	a[CounterRefusedOther] = int64(o.Refused.Other)
	a[CounterRefused] = int64(o.Refused.Total())
	if o.Refused.AfterData {
		a[CounterRefusedAfterData] = 1
	}
	return a
}

// tried returns how many recipients the next hop was asked for.
func (o *Observation) tried() int64 {
	if o.Tried > 0 {
		return int64(o.Tried)
	}
	if o.Class == "" {
		return 0
	}
	return int64(o.Recipients + o.Refused.Total() - o.Refused.AfterDataRecipients)
}

// counted reports whether counter c is kept under limits: when its
// threshold is set, and for the classes of refusal also when
// CounterRefused is counted, so its evidence can say which kind it was.
func counted(c Counter, limits *Thresholds) bool {
	return limits[c].Count > 0 || (c.refusalClass() && limits[CounterRefused].Count > 0)
}

// addSlot adds n to the volume series s in the slot of now.
func addSlot(s []entry, now int64, window time.Duration, n int64) []entry {
	at := now - now%slotWidth(window)
	if k := len(s); k > 0 && s[k-1].At == at {
		s[k-1].N += n
		return s
	}
	return append(s, entry{At: at, N: n})
}

// slotWidth is the slot length of a volume counter with window w.
func slotWidth(w time.Duration) int64 {
	return int64(max(time.Second, w/volumeSlots))
}

// prune drops entries of counter c outside its window ending at now.
func (w *window) prune(c Counter, now int64) {
	s := w.Series[c]
	cut := now - int64(w.Limits[c].Window)
	i := 0
	for i < len(s) && s[i].At <= cut {
		w.sum[c] -= s[i].N
		i++
	}
	if i > 0 {
		w.Series[c] = append(s[:0], s[i:]...)
	}
}

// trim drops the oldest entries of c that are not needed to know whether
// its threshold is reached: they keep memory bounded by the threshold.
// The refusal counters keep their whole window (at most volumeSlots
// slots): their share and their evidence need all of it.
func (w *window) trim(c Counter) {
	if c == CounterRefused || c.refusalClass() {
		return
	}
	lim := int64(w.Limits[c].Count)
	s := w.Series[c]
	i := 0
	for i < len(s)-1 && w.sum[c]-s[i].N >= lim {
		w.sum[c] -= s[i].N
		i++
	}
	if i > 0 {
		w.Series[c] = append(s[:0], s[i:]...)
	}
}

// observe adds an observation at now under limits and returns the first
// counter (in Counter order) that this observation brought to its
// threshold, or -1. The caller holds the shard's mutex.
func (w *window) observe(now int64, o *Observation, limits Thresholds) Counter {
	if now < w.Last {
		now = w.Last // the clock went back: keep entries ordered
	}
	w.Last = now
	w.User = o.User
	w.Limits = limits
	add := o.amounts()
	w.countTried(now, o.tried(), &limits)
	crossed := Counter(-1)
	for c := range numCounters {
		if !counted(c, &limits) {
			w.Series[c], w.sum[c] = nil, 0 // off: not counted
			continue
		}
		w.prune(c, now)
		if add[c] > 0 {
			if c.volume() {
				w.Series[c] = addSlot(w.Series[c], now, limits[c].Window, add[c])
			} else {
				w.Series[c] = append(w.Series[c], entry{At: now, N: add[c], Tx: o.TxID})
			}
			w.sum[c] += add[c]
		}
		w.trim(c)
		if crossed < 0 && add[c] > 0 && w.reached(c) {
			crossed = c
		}
	}
	if add[CounterMessages] > 0 && (limits[CounterMessages].Count > 0 || limits[CounterRecipients].Count > 0) {
		w.Recent = append(w.Recent, entry{At: now, Tx: o.TxID})
		if over := len(w.Recent) - MaxVolumeEvidence; over > 0 {
			w.Recent = append(w.Recent[:0], w.Recent[over:]...)
		}
	} else if limits[CounterMessages].Count == 0 && limits[CounterRecipients].Count == 0 {
		w.Recent = nil
	}
	return crossed
}

// countTried adds n recipients tried to CounterRefused's denominator, and
// drops what left its window.
func (w *window) countTried(now, n int64, limits *Thresholds) {
	l := limits[CounterRefused]
	if l.Count == 0 || l.Share == 0 {
		w.Tried, w.triedSum = nil, 0
		return
	}
	cut := now - int64(l.Window)
	i := 0
	for i < len(w.Tried) && w.Tried[i].At <= cut {
		w.triedSum -= w.Tried[i].N
		i++
	}
	if i > 0 {
		w.Tried = append(w.Tried[:0], w.Tried[i:]...)
	}
	if n > 0 {
		w.Tried = addSlot(w.Tried, now, l.Window, n)
		w.triedSum += n
	}
}

// reached reports whether counter c is at its threshold: its count, and
// for CounterRefused also its share of the recipients tried.
func (w *window) reached(c Counter) bool {
	l := w.Limits[c]
	if l.Count == 0 || w.sum[c] < int64(l.Count) {
		return false
	}
	if c == CounterRefused && l.Share > 0 {
		return float64(w.sum[c]) >= l.Share*float64(w.triedSum)
	}
	return true
}

// evidence describes the crossing of c at now.
func (w *window) evidence(c Counter, now time.Time) *Evidence {
	ev := &Evidence{
		User:      w.User,
		Counter:   c.String(),
		Count:     int(w.sum[c]),
		Threshold: w.Limits[c].Count,
		Window:    w.Limits[c].Window,
		Counts:    make(map[string]int, numCounters),
		At:        now,
	}
	for i := range numCounters {
		ev.Counts[i.String()] = int(w.sum[i])
	}
	if c == CounterRefused && w.Limits[c].Share > 0 {
		ev.Counts["tried"] = int(w.triedSum)
	}
	if c.volume() {
		cut := now.UnixNano() - int64(w.Limits[c].Window)
		for _, e := range w.Recent {
			if e.At > cut {
				ev.TxIDs = append(ev.TxIDs, e.Tx)
			}
		}
	} else {
		for _, e := range w.Series[c] {
			ev.TxIDs = append(ev.TxIDs, e.Tx)
		}
	}
	return ev
}

// reset starts counter c afresh after it crossed its threshold; a
// refusal crossing starts the refusal counters and their share afresh.
func (w *window) reset(c Counter) {
	w.Series[c], w.sum[c] = nil, 0
	if c == CounterRefused || c.refusalClass() {
		for _, r := range []Counter{CounterRefused, CounterRefusedPolicy, CounterRefusedUnknown, CounterRefusedOther} {
			w.Series[r], w.sum[r] = nil, 0
		}
		w.Tried, w.triedSum = nil, 0
	}
}

// counts returns each counter's value in its window at now, without
// changing w.
func (w *window) counts(now int64) [numCounters]int64 {
	var out [numCounters]int64
	for c := range numCounters {
		cut := now - int64(w.Limits[c].Window)
		for _, e := range w.Series[c] {
			if e.At > cut {
				out[c] += e.N
			}
		}
	}
	return out
}

// idle reports whether every entry of w lies outside its window at now, so
// w can be forgotten.
func (w *window) idle(now int64) bool {
	for c := range numCounters {
		if n := len(w.Series[c]); n > 0 && w.Series[c][n-1].At > now-int64(w.Limits[c].Window) {
			return false
		}
	}
	if n := len(w.Tried); n > 0 && w.Tried[n-1].At > now-int64(w.Limits[CounterRefused].Window) {
		return false
	}
	return true
}

// restore recomputes what is not stored after decoding.
func (w *window) restore() {
	w.Limits = w.Limits.clamped()
	for c := range numCounters {
		w.sum[c] = 0
		for _, e := range w.Series[c] {
			w.sum[c] += e.N
		}
	}
	w.triedSum = 0
	for _, e := range w.Tried {
		w.triedSum += e.N
	}
}
