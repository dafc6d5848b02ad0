package app

import (
	"slices"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// recordOf returns the log record of the transaction a reply names.
func (e *env) recordOf(t *testing.T, err error) *quarantine.Record {
	t.Helper()
	e.flush()
	rec, gerr := e.app.store.Get(idOf(t, err))
	if gerr != nil {
		t.Fatal(gerr)
	}
	return rec
}

// TestScannersSeePastBuiltinLimits: content past the built-in engine's
// limits that rspamd or clamd can see is refused with their verdict, and
// the record still says the built-in engine saw only part of it.
func TestScannersSeePastBuiltinLimits(t *testing.T) {
	clamd := strings.TrimPrefix(envOr("OUTGUARD_CLAMD_ADDR", "tcp:127.0.0.1:3310"), "tcp:")
	rspamd := strings.TrimPrefix(envOr("OUTGUARD_RSPAMD_URL", "http://127.0.0.1:11333"), "http://")
	requireService(t, "clamd", clamd)
	requireService(t, "rspamd", rspamd)
	e := newEnv(t, "    unscannable: accept\n", `filter:
  engines:
    builtin: {content_model: {enabled: false}}
    rspamd: {enabled: true, url: "http://`+rspamd+`", timeout: 30s, on_error: tempfail}
    clamd: {enabled: true, address: "tcp:`+clamd+`", timeout: 30s, on_error: tempfail}
`)
	for _, tc := range []struct {
		name, msg, word, reason, limit string
	}{
		// rspamd reads MIME nested 25 deep; the built-in engine stops at 16.
		{"GTUBE at depth 25 via rspamd", string(testutil.NestedMessage(hdr("s1", "deep25"), 25, gtLeaf)), "[OG-SPAM]", "rspamd:GTUBE(", "max_depth"},
		// clamd opens archives nested 10 deep; the built-in engine stops at 8.
		{"EICAR in a zip nested 10 deep via clamd", string(testutil.ManyParts(hdr("s2", "zip10"), 1, zipLeaf(testutil.NestedZip(10, "eicar.com", []byte(eicar))))), "[OG-VIRUS]", "clamd:", "max_archive_depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.send("a@out.example.net", tc.msg)
			r := replyOf(err)
			if r == nil || r.Code != 550 || !strings.Contains(r.Message, tc.word) {
				t.Fatalf("got %v, want 550 %s", err, tc.word)
			}
			rec := e.recordOf(t, err)
			if !slices.ContainsFunc(rec.Reasons, func(s string) bool { return strings.HasPrefix(s, tc.reason) }) {
				t.Errorf("reasons %q, want one from %s", rec.Reasons, tc.reason)
			}
			if !slices.Equal(rec.Partial, []string{tc.limit}) {
				t.Errorf("partially scanned %q, want %s", rec.Partial, tc.limit)
			}
		})
	}
	if n := len(e.mail()); n != 0 {
		t.Errorf("relayed %d, want 0", n)
	}
}

// TestClamdSkipIsPartial: a message clamd does not take (over_limit: skip)
// is partially scanned, and the policy applies to it. clamd is never
// dialled for it, so no running clamd is needed.
func TestClamdSkipIsPartial(t *testing.T) {
	dead := testutil.DeadAddr(t)
	for _, tc := range []struct {
		policy string
		code   int
	}{{"", 250}, {"block", 550}} {
		t.Run("policy "+tc.policy, func(t *testing.T) {
			domain := ""
			if tc.policy != "" {
				domain = "    unscannable: " + tc.policy + "\n"
			}
			e := newEnv(t, domain, `filter:
  engines:
    builtin: {content_model: {enabled: false}}
    clamd: {enabled: true, address: "tcp:`+dead+`", max_stream_bytes: 100, over_limit: skip}
`)
			err := e.send("a@out.example.net", testMessage("k1", "big", strings.Repeat("a plain line of text\r\n", 20)))
			if tc.code == 250 {
				if err != nil {
					t.Fatalf("got %v, want 250", err)
				}
				e.flush()
				page, err := e.app.store.Search(quarantine.Query{Limit: 1})
				if err != nil || len(page.Records) != 1 || !slices.Equal(page.Records[0].Partial, []string{"clamd_max_stream_bytes"}) {
					t.Fatalf("record %v %+v, want flagged clamd_max_stream_bytes", err, page.Records)
				}
				return
			}
			if r := replyOf(err); r == nil || r.Code != 550 || !strings.Contains(r.Message, "[OG-UNSCANNABLE]") || !strings.Contains(r.Message, "clamd_max_stream_bytes") {
				t.Fatalf("got %v, want 550 [OG-UNSCANNABLE] naming clamd_max_stream_bytes", err)
			}
			if rec := e.recordOf(t, err); rec.Status != quarantine.StatusQuarantined {
				t.Errorf("status %v, want quarantined", rec.Status)
			}
		})
	}
}
