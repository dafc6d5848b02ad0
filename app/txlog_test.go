package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/quarantine"
)

// logBuffer is a goroutine-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// transactions returns the "transaction" log lines by log id.
func (l *logBuffer) transactions(t *testing.T) map[string]map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "transaction" {
			out[m["tx"].(string)] = m
		}
	}
	return out
}

// TestTransactionLogLine checks the daemon's one log line per transaction:
// it carries the identity, the verdict and its score, the outcome, and the
// next hop's reply for relayed mail.
func TestTransactionLogLine(t *testing.T) {
	e := newEnv(t, "", "")
	logs := &logBuffer{}
	e.logOut = logs
	e.restart()

	// A clean message, relayed: its id is the record the log finds.
	if err := e.send("x@out.example.net", testMessage("shop-a", "invoice", "Your invoice is attached.")); err != nil {
		t.Fatal(err)
	}
	e.flush()
	page, err := e.app.store.Search(quarantine.Query{Identity: "shop-a"})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("records %d, %v", len(page.Records), err)
	}
	relayed := page.Records[0].ID
	spamErr := e.send("x@out.example.net", testMessage("shop-b", "win", gtube))
	quarantined := idOf(t, spamErr)

	lines := logs.transactions(t)
	l := lines[relayed]
	if l == nil {
		t.Fatalf("no transaction line for %s in %v", relayed, lines)
	}
	if l["identity"] != "shop-a" || l["verdict"] != "clean" || l["outcome"] != "accepted" || l["user"] != "trial" {
		t.Errorf("relayed: %v", l)
	}
	if _, ok := l["score"].(float64); !ok {
		t.Errorf("relayed: score %v missing", l["score"])
	}
	if r, _ := l["next_hop_reply"].(string); !strings.HasPrefix(r, "250 ") || !strings.Contains(r, "queued") {
		t.Errorf("relayed: next_hop_reply %q, want the next hop's 250", r)
	}
	l = lines[quarantined]
	if l == nil {
		t.Fatalf("no transaction line for %s", quarantined)
	}
	if l["identity"] != "shop-b" || l["verdict"] != "spam" || l["outcome"] != "quarantined" {
		t.Errorf("quarantined: %v", l)
	}
	if s, _ := l["score"].(float64); s <= 0 {
		t.Errorf("quarantined: score %v, want the engine's positive score", l["score"])
	}
	if _, ok := l["next_hop_reply"]; ok {
		t.Errorf("quarantined: next_hop_reply %v, but the next hop never saw the message", l["next_hop_reply"])
	}
}
