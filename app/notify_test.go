package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/notify"
)

// TestWebhookOnAutomaticLock: an automatic lock reaches a webhook receiver
// as a verified, signed event, also when the receiver was down at first.
func TestWebhookOnAutomaticLock(t *testing.T) {
	secret := "webhook-secret-0123456789abcdef"
	var mu sync.Mutex
	down := true
	var events []map[string]any
	now := time.Now // replaced by the app's clock once it exists
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify([]byte(secret), r.Header, body, now(), time.Hour); err != nil {
			t.Errorf("signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		events = append(events, ev)
	}))
	defer srv.Close()
	e := newEnv(t, "", fmt.Sprintf("notify:\n  webhook: {url: %q, secret: %q, retry: {initial: 1s, max: 2s}}\n", srv.URL, secret))
	mu.Lock()
	now = e.clock.Now
	mu.Unlock()
	for i := 0; i < 5; i++ {
		e.send("a@out.example.net", testMessage("hooked", fmt.Sprintf("s%d", i), gtube))
	}
	if _, locked := e.app.ids.CheckIdentity("out.example.net", "hooked"); !locked {
		t.Fatal("identity not locked")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	got := func() (n int, auto map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev["type"] == "auto-lock" {
				n++
				auto = ev
			}
		}
		return n, auto
	}
	// Once the notifier's outbox is empty, nothing more can be sent: the
	// count is final.
	if !e.waitFor(20*time.Second, func() bool {
		n, _ := got()
		p, err := e.app.notifier.Pending()
		return n > 0 && err == nil && p == 0
	}) {
		t.Fatal("no auto-lock event arrived after the receiver came back")
	}
	n, ev := got()
	if n != 1 {
		t.Errorf("auto-lock events = %d, want exactly 1", n)
	}
	if fmt.Sprint(ev["domain"]) != "out.example.net" || fmt.Sprint(ev["identity"]) != "hooked" {
		t.Errorf("event = %v, want domain and identity", ev)
	}
}

// TestEscalationOverSMTP: with escalate_after 1, the second automatic lock
// of an identity is permanent.
func TestEscalationOverSMTP(t *testing.T) {
	e := newEnv(t, "", "")
	b, _ := os.ReadFile(e.path)
	os.WriteFile(e.path, []byte(strings.Replace(string(b), "identity:\n", "identity:\n  escalate_after: 1\n", 1)), 0o600)
	e.restart()
	for round := 0; round < 2; round++ {
		for i := 0; i < 5; i++ {
			e.send("a@out.example.net", testMessage("repeat", fmt.Sprintf("r%d-%d", round, i), gtube))
		}
		lock, err := e.app.ids.Get(context.Background(), identity.IdentityTarget("out.example.net", "repeat"))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if round == 0 && lock.Expires.IsZero() {
			t.Fatalf("first automatic lock is permanent, want temporary")
		}
		if round == 1 && !lock.Expires.IsZero() {
			t.Fatalf("second automatic lock expires %v, want permanent (escalate_after 1)", lock.Expires)
		}
		e.clock.Advance(2 * time.Hour) // the temporary lock ends
	}
}
