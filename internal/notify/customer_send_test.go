package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/identity"
)

// TestNotifyCustomer: an operator's request stores one customer item,
// mailed with its own Message-ID (a lock's notice and a request are two
// mails); a domain without a notice, or an event that is no lock of an
// identity, stores nothing.
func TestNotifyCustomer(t *testing.T) {
	clock := newClock()
	var mu sync.Mutex
	var sent []string
	n, err := New(Options{DB: testDB(t), Now: clock.Now, Mail: MailOptions{From: "outguard@mta.example", Hostname: "mta.example"},
		SendMail: func(_ context.Context, to string, raw []byte) error {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, to+"\n"+string(raw))
			return nil
		},
		Customer: func(domain string) (CustomerNotice, bool) {
			return CustomerNotice{To: NoticeToIdentity, Subject: "{identity} paused", Body: "Reason: {reason}"}, domain == "out.example.net"
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	l := identity.Lock{Target: identity.IdentityTarget("out.example.net", "alice@customer.example"), Reason: "spam run", Start: clock.Now()}
	ev := FromIdentity(identity.Event{Type: identity.EventLock, Target: l.Target, At: l.Start, Lock: &l})
	ctx := context.Background()
	first, err := n.NotifyCustomer(ctx, ev, "alice@customer.example")
	if err != nil {
		t.Fatal(err)
	}
	second, err := n.NotifyCustomer(ctx, ev, "alice@customer.example")
	if err != nil || first.ID == second.ID {
		t.Fatalf("second request: %v, ids %s %s; want a new event", err, first.ID, second.ID)
	}
	other := ev
	other.Domain = "plain.example"
	if _, err := n.NotifyCustomer(ctx, other, "alice@customer.example"); !errors.Is(err, ErrNoCustomerNotice) {
		t.Errorf("domain without a notice: got %v, want ErrNoCustomerNotice", err)
	}
	unlock := ev
	unlock.Type = EventUnlock
	if _, err := n.NotifyCustomer(ctx, unlock, "alice@customer.example"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unlock event: got %v, want ErrInvalid", err)
	}
	if _, err := n.NotifyCustomer(ctx, ev, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("no recipient: got %v, want ErrInvalid", err)
	}
	if p, _ := n.Pending(); p != 2 {
		t.Fatalf("pending: %d, want 2", p)
	}
	if _, err := n.Round(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if len(sent) != 2 {
		t.Fatalf("sent %d mails, want 2", len(sent))
	}
	for i, id := range []string{first.ID, second.ID} {
		if !strings.HasPrefix(sent[i], "alice@customer.example\n") || !strings.Contains(sent[i], "Message-ID: <"+id+".notice@mta.example>") ||
			!strings.Contains(sent[i], "Reason: spam run") {
			t.Errorf("mail %d:\n%s", i, sent[i])
		}
	}
	n.Stop()
	if _, err := n.NotifyCustomer(ctx, ev, "alice@customer.example"); !errors.Is(err, ErrStopped) {
		t.Errorf("after Stop: got %v, want ErrStopped", err)
	}
}
