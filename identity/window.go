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
	// marks a window evicted from memory, to delete from bbolt.
	dirty map[string]*window
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

	sum [numCounters]int64
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
	return a
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
func (w *window) trim(c Counter) {
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
	crossed := Counter(-1)
	for c := range numCounters {
		if limits[c].Count == 0 {
			w.Series[c], w.sum[c] = nil, 0 // off: not counted
			continue
		}
		w.prune(c, now)
		if add[c] > 0 {
			if c.volume() {
				at := now - now%slotWidth(limits[c].Window)
				if n := len(w.Series[c]); n > 0 && w.Series[c][n-1].At == at {
					w.Series[c][n-1].N += add[c]
				} else {
					w.Series[c] = append(w.Series[c], entry{At: at, N: add[c]})
				}
			} else {
				w.Series[c] = append(w.Series[c], entry{At: now, N: add[c], Tx: o.TxID})
			}
			w.sum[c] += add[c]
		}
		w.trim(c)
		if crossed < 0 && add[c] > 0 && w.sum[c] >= int64(limits[c].Count) {
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

// reset starts counter c afresh after it crossed its threshold.
func (w *window) reset(c Counter) {
	w.Series[c], w.sum[c] = nil, 0
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
}
