package notify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/identity"
)

// EventType names what happened.
type EventType string

// Event types; the configuration's notify.webhook.events lists these.
const (
	// EventLock: an admin (or feedback processing) locked a user or an
	// identity.
	EventLock EventType = "lock"
	// EventAutoLock: a threshold locked an identity automatically.
	EventAutoLock EventType = "auto-lock"
	// EventUnlock: an admin lifted a lock.
	EventUnlock EventType = "unlock"
	// EventExpire: a temporary lock ended.
	EventExpire EventType = "expire"
	// EventWouldLock: in monitor mode, a threshold was crossed.
	EventWouldLock EventType = "would-lock"
	// EventOutboxExpired: an ARF report expired undelivered.
	EventOutboxExpired EventType = "outbox-expired"
)

// EventTypes lists every event type.
func EventTypes() []EventType {
	return []EventType{EventLock, EventAutoLock, EventUnlock, EventExpire, EventWouldLock, EventOutboxExpired}
}

// ParseEventType checks a configured event name.
func ParseEventType(s string) (EventType, error) {
	for _, t := range EventTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("notify: unknown event %q", s)
}

// Event is what a webhook receives, as JSON. Fields that do not apply to
// the type are left out.
type Event struct {
	// ID identifies the event; it stays the same across retries.
	// Notify sets it when empty.
	ID   string    `json:"id"`
	Type EventType `json:"type"`
	// At is when it happened.
	At time.Time `json:"at"`
	// Domain is the administrative domain; User the outgoing user (for
	// an identity: the user it was last seen sending through); Identity
	// the identity.
	Domain   string `json:"domain,omitempty"`
	User     string `json:"user,omitempty"`
	Identity string `json:"identity,omitempty"`
	// TxIDs are the log ids of the transactions that triggered an
	// automatic lock or a would-lock.
	TxIDs []string `json:"tx_ids,omitempty"`
	// Lock describes the lock for lock, auto-lock, unlock, expire and
	// would-lock (where it is the lock that would have been made).
	Lock *Lock `json:"lock,omitempty"`
	// Report describes the expired ARF report for outbox-expired.
	Report *Report `json:"report,omitempty"`
	// Summary is one line for people.
	Summary string `json:"summary"`
}

// Lock is the lock an Event is about.
type Lock struct {
	// ID is stable for one lock: the same in its lock, unlock and expire
	// events.
	ID string `json:"id"`
	// Kind is user or identity.
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Automatic bool      `json:"automatic,omitempty"`
	Escalated bool      `json:"escalated,omitempty"`
	Start     time.Time `json:"start,omitzero"`
	// Expires is the end of a temporary lock; absent when permanent.
	Expires      time.Time `json:"expires,omitzero"`
	Unlocked     time.Time `json:"unlocked,omitzero"`
	UnlockedBy   string    `json:"unlocked_by,omitempty"`
	UnlockReason string    `json:"unlock_reason,omitempty"`
	// Counter, Count, Threshold and Window are the crossing that made an
	// automatic lock or a would-lock.
	Counter   string `json:"counter,omitempty"`
	Count     int    `json:"count,omitempty"`
	Threshold int    `json:"threshold,omitempty"`
	Window    string `json:"window,omitempty"`
}

// Report is the ARF report of an outbox-expired event.
type Report struct {
	ID        string    `json:"id"`
	To        []string  `json:"to"`
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
}

// LockID returns the stable id of the lock on t that started at start.
func LockID(t identity.Target, start time.Time) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", t.Kind, strings.ToLower(t.Domain), strings.ToLower(t.Name), start.UnixNano())
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// NewEventID returns a random event id.
func NewEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// FromIdentity converts an event of identity.Options.OnEvent.
func FromIdentity(ev identity.Event) Event {
	out := Event{Type: EventType(ev.Type), At: ev.At.UTC(), Domain: ev.Target.Domain}
	switch ev.Target.Kind {
	case identity.KindUser:
		out.User = ev.Target.Name
	case identity.KindIdentity:
		out.Identity = ev.Target.Name
	}
	var evidence *identity.Evidence
	if l := ev.Lock; l != nil {
		out.Lock = &Lock{
			ID: LockID(l.Target, l.Start), Kind: string(l.Kind), Reason: l.Reason, Actor: l.Actor,
			Automatic: l.Automatic, Escalated: l.Escalated, Start: l.Start.UTC(), Expires: utc(l.Expires),
			Unlocked: utc(l.Unlocked), UnlockedBy: l.UnlockedBy, UnlockReason: l.UnlockReason,
		}
		evidence = l.Evidence
	}
	if w := ev.WouldLock; w != nil {
		evidence = &w.Evidence
		out.Lock = &Lock{ID: LockID(w.Target, w.At), Kind: string(w.Target.Kind), Actor: identity.ActorAuto, Automatic: true}
	}
	if evidence != nil {
		if out.User == "" {
			out.User = evidence.User
		}
		out.TxIDs = append([]string(nil), evidence.TxIDs...)
		out.Lock.Counter, out.Lock.Count, out.Lock.Threshold = evidence.Counter, evidence.Count, evidence.Threshold
		if evidence.Window > 0 {
			out.Lock.Window = evidence.Window.String()
		}
	}
	out.Summary = summary(out)
	return out
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// FromOutboxExpiry converts an ARF report that expired undelivered.
func FromOutboxExpiry(e arf.Entry) Event {
	out := Event{Type: EventOutboxExpired, At: utc(e.Expired), Report: &Report{
		ID: e.ID, To: append([]string{}, e.To...), Created: e.Created.UTC(), Attempts: e.Attempts, LastError: e.LastError,
	}}
	if out.At.IsZero() {
		out.At = time.Now().UTC()
	}
	out.Summary = summary(out)
	return out
}

// summary is the one-line description of ev.
func summary(ev Event) string {
	who := ""
	switch {
	case ev.Identity != "":
		who = fmt.Sprintf("identity %s (%s)", ev.Identity, ev.Domain)
	case ev.User != "":
		who = fmt.Sprintf("user %s (%s)", ev.User, ev.Domain)
	}
	l := ev.Lock
	if l == nil {
		l = &Lock{}
	}
	if ev.Report == nil {
		ev.Report = &Report{}
	}
	switch ev.Type {
	case EventLock:
		return fmt.Sprintf("%s locked by %s: %s", who, l.Actor, l.Reason)
	case EventAutoLock:
		return fmt.Sprintf("%s locked automatically: %d %s within %s (threshold %d)", who, l.Count, l.Counter, l.Window, l.Threshold)
	case EventUnlock:
		return fmt.Sprintf("%s unlocked by %s: %s", who, l.UnlockedBy, l.UnlockReason)
	case EventExpire:
		return fmt.Sprintf("%s: temporary lock expired", who)
	case EventWouldLock:
		return fmt.Sprintf("%s would have been locked (monitor mode): %d %s within %s (threshold %d)", who, l.Count, l.Counter, l.Window, l.Threshold)
	case EventOutboxExpired:
		return fmt.Sprintf("ARF report %s to %s expired undelivered after %d attempts", ev.Report.ID, strings.Join(ev.Report.To, ", "), ev.Report.Attempts)
	}
	return string(ev.Type)
}

// OnIdentityEvent notifies an identity event; pass it as
// identity.Options.OnEvent. A failure to store the event is logged: the
// lock itself is done.
func (n *Notifier) OnIdentityEvent(ev identity.Event) {
	e := FromIdentity(ev)
	if err := n.Notify(context.Background(), e); err != nil && !errors.Is(err, ErrStopped) {
		n.log.Error("notify: event not stored", "type", e.Type, "domain", e.Domain, "identity", e.Identity, "user", e.User, "err", err)
	}
}

// OnOutboxExpiry notifies an ARF report that expired undelivered; call it
// from the ARF outbox's expiry hook.
func (n *Notifier) OnOutboxExpiry(e arf.Entry) {
	ev := FromOutboxExpiry(e)
	if err := n.Notify(context.Background(), ev); err != nil && !errors.Is(err, ErrStopped) {
		n.log.Error("notify: event not stored", "type", ev.Type, "report_id", e.ID, "err", err)
	}
}
