package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// fleetExtra is the configuration of node on the postgres backend at dsn.
func fleetExtra(node, dsn string) string {
	return fmt.Sprintf("node_name: %s\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n", node, dsn)
}

// TestFleetNotificationOutbox: on the postgres backend the notification
// outbox is shared. An automatic lock on node A waits, while the webhook
// is down, in the outbox node B sees too, and reaches the webhook exactly
// once when it is back.
func TestFleetNotificationOutbox(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var mu sync.Mutex
	down := true
	var autoLocks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		if ev["type"] == "auto-lock" {
			autoLocks = append(autoLocks, fmt.Sprint(ev["identity"]))
		}
	}))
	defer srv.Close()
	hook := fmt.Sprintf("notify:\n  webhook: {url: %q, secret: \"webhook-secret-0123456789abcdef\", retry: {initial: 1s, max: 2s}}\n", srv.URL)
	a := newEnv(t, "", hook+fleetExtra("mx-a", dsn))
	b := newEnv(t, "", hook+fleetExtra("mx-b", dsn))
	for i := range 5 {
		a.send("a@out.example.net", testMessage("fleeting", fmt.Sprintf("s%d", i), gtube))
	}
	if _, locked := a.app.ids.CheckIdentity("out.example.net", "fleeting"); !locked {
		t.Fatal("identity not locked on node A")
	}
	if p, err := b.app.notifier.Pending(); err != nil || p != 1 {
		t.Fatalf("node B sees %d pending notifications (%v), want node A's 1", p, err)
	}
	var node string
	if err := b.app.pg.QueryRow(context.Background(), "SELECT node FROM notify_outbox").Scan(&node); err != nil || node != "mx-a" {
		t.Errorf("outbox row from node %q (%v), want mx-a", node, err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if !a.waitFor(20*time.Second, func() bool {
		mu.Lock()
		n := len(autoLocks)
		mu.Unlock()
		pa, errA := a.app.notifier.Pending()
		pb, errB := b.app.notifier.Pending()
		return n > 0 && errA == nil && errB == nil && pa == 0 && pb == 0
	}) {
		t.Fatal("the auto-lock event was not delivered after the webhook came back")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(autoLocks) != 1 || autoLocks[0] != "fleeting" {
		t.Errorf("webhook got auto-lock events %v, want fleeting once", autoLocks)
	}
}

// TestFleetFeedback: on the postgres backend the feedback store is
// shared. A report sent over SMTP to node A and again to node B is stored
// and counted once; B answers it as a duplicate, and both nodes' APIs
// list it.
func TestFleetFeedback(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	rep := "  reporters: [{name: fbl, networks: [127.0.0.0/8], count_identity_header: true}]\n"
	a := feedbackEnvWith(t, rep, fleetExtra("mx-a", dsn))
	b := feedbackEnvWith(t, rep, fleetExtra("mx-b", dsn))
	a.relayOne("innocent1", "news") // the identity is known on A
	report := fblReport("fbl@mailbox.example", 1, forgedOriginal("innocent1", 1))
	for _, e := range []*env{a, b} {
		if err := e.sendReport("fbl@mailbox.example", report); err != nil {
			t.Fatal(err)
		}
	}
	for name, e := range map[string]*env{"A": a, "B": b} {
		if list := e.feedbackList(t, ""); len(list) != 1 || !list[0].Counted {
			t.Errorf("node %s lists %+v; want the one report, counted", name, list)
		}
	}
	if m := counterValue(t, b.app, "outguard_feedback_complaints_total", map[string]string{"outcome": "duplicate"}); m != 1 {
		t.Errorf("node B: outguard_feedback_complaints_total{outcome=duplicate} = %v, want 1", m)
	}
	if m := counterValue(t, b.app, "outguard_feedback_complaints_total", map[string]string{"outcome": "counted"}); m != 0 {
		t.Errorf("node B counted the report node A had counted: %v", m)
	}
}

// TestFleetDetectionState: on the postgres backend an identity's baseline
// profile, keyed by its domain, and the campaigns follow the mail to
// another node: node B, started after node A stopped, knows the profiles
// and the campaign A learnt.
func TestFleetDetectionState(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := newEnv(t, "", fleetExtra("mx-a", dsn))
	for i := 1; i <= 3; i++ {
		if err := a.send("shop@out.example.net", testMessage(fmt.Sprint("shop", i), "Your seasonal gift", campaignText(i))); err != nil {
			t.Fatal(err)
		}
	}
	before := a.app.campaigns.List(campaign.Filter{MinMessages: 3})
	if len(before) != 1 {
		t.Fatalf("campaigns on A: %+v", before)
	}
	a.app.Stop()
	b := newEnv(t, "", fleetExtra("mx-b", dsn))
	after := b.app.campaigns.List(campaign.Filter{MinMessages: 3})
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Identities != 3 {
		t.Errorf("campaigns on B: %+v, want A's %s with 3 identities", after, before[0].ID)
	}
	p, ok := b.app.detect.fetch("out.example.net\x00shop2")
	if !ok || p.Stats().Messages != 1 {
		t.Errorf("shop2's profile on B: found %v, %+v; want A's, one message", ok, p.Stats())
	}
	if _, ok := b.app.detect.fetch("other.example\x00shop2"); ok {
		t.Error("shop2 of another domain has out.example.net's profile")
	}
}

// TestFleetContentOverlay: on the postgres backend the content model's
// overlay is shared: node B, started after node A learnt, scores with A's
// lesson.
func TestFleetContentOverlay(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := newEnv(t, "", fleetExtra("mx-a", dsn))
	if a.app.learner == nil {
		t.Fatal("the content model is off in the test configuration")
	}
	f := content.Features{1, 2, 3, 4, 5}
	if _, _, err := a.app.learner.Learn(f, nil, true); err != nil {
		t.Fatal(err)
	}
	want, _ := a.app.learner.Score(f)
	if a.app.learner.Info().Learned == 0 {
		t.Fatal("node A's lesson is not counted")
	}
	b := newEnv(t, "", fleetExtra("mx-b", dsn))
	if got, _ := b.app.learner.Score(f); got != want || b.app.learner.Info().Learned != a.app.learner.Info().Learned {
		t.Errorf("node B scores %.3f with %d lessons; want A's %.3f, %d", got, b.app.learner.Info().Learned, want, a.app.learner.Info().Learned)
	}
}
