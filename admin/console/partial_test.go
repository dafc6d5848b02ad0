package console

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/quarantine"
)

// TestPartiallyScannedShown: a record whose content was partly left
// unscanned says so, with the limits, in the API JSON, the console's log
// list and its message view; a whole scan says nothing of the kind.
func TestPartiallyScannedShown(t *testing.T) {
	e := newConsoleEnv(t)
	ctx := context.Background()
	partial := admintest.Record(e.Clock.Now().Add(-20*time.Minute), domOut, "webhost1", "dave@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Deep message")
	partial.Partial = []string{"archive_encrypted", "max_depth"}
	whole := admintest.Record(e.Clock.Now().Add(-10*time.Minute), domOut, "webhost1", "erin@customer.example", quarantine.StatusAccepted, quarantine.VerdictClean, "Flat message")
	for _, r := range []*quarantine.Record{partial, whole} {
		if err := e.Store.AppendWait(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	var got apiv1.MessageDetail
	if code := e.DoJSON("GET", "/api/v1/messages/"+partial.ID, tokAll, nil, &got); code != http.StatusOK {
		t.Fatalf("GET message: %d", code)
	}
	if !slices.Equal(got.Message.PartiallyScanned, partial.Partial) {
		t.Errorf("API partially_scanned = %q, want %q", got.Message.PartiallyScanned, partial.Partial)
	}
	code, raw := e.Do("GET", "/api/v1/messages/"+whole.ID, tokAll, nil)
	if code != http.StatusOK || strings.Contains(string(raw), "partially_scanned") {
		t.Errorf("whole scan: got %d %s, want no partially_scanned key", code, raw)
	}

	var page apiv1.SearchResponse
	if code := e.DoJSON("GET", "/api/v1/messages?partial=true", tokAll, nil, &page); code != http.StatusOK || len(page.Messages) != 1 || page.Messages[0].ID != partial.ID {
		t.Errorf("search partial=true: %d, got %d messages, want only %s", code, len(page.Messages), partial.ID)
	}
	if code, _ := e.Do("GET", "/api/v1/messages?partial=maybe", tokAll, nil); code != http.StatusBadRequest {
		t.Errorf("partial=maybe: got %d, want 400", code)
	}

	b := e.browser()
	b.signIn(tokAll)
	_, body, _ := b.get("/log?partial=true")
	if !strings.Contains(body, ">Deep message<") || strings.Contains(body, ">Flat message<") || !strings.Contains(body, `name="partial" value="true" checked`) {
		t.Errorf("console search for partially scanned messages: got\n%s", body)
	}
	code, body, _ = b.get("/log/" + partial.ID)
	if code != http.StatusOK || !strings.Contains(body, `<span class="badge partial">partially</span>`) ||
		!strings.Contains(body, `<span class="mono">archive_encrypted</span>, <span class="mono">max_depth</span> reached`) {
		t.Errorf("message view of a partial scan: got %d\n%s", code, body)
	}
	code, body, _ = b.get("/log/" + whole.ID)
	if code != http.StatusOK || !strings.Contains(body, "<dt>Scanned</dt><dd>whole</dd>") {
		t.Errorf("message view of a whole scan: got %d without Scanned: whole", code)
	}
	_, body, _ = b.get("/log")
	for _, row := range strings.Split(body, "<tr class=\"st-") {
		switch {
		case strings.Contains(row, ">Deep message<") && !strings.Contains(row, "partially scanned"):
			t.Errorf("log row of the partial scan lacks the flag:\n%s", row)
		case strings.Contains(row, ">Flat message<") && strings.Contains(row, "partially scanned"):
			t.Errorf("log row of the whole scan is flagged:\n%s", row)
		}
	}
}
