package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

func hdr(ident, subject string) string {
	return "X-AuthUser: " + ident + "\r\nFrom: shop@out.example.net\r\nTo: rcpt@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject + "@out.example.net>"
}

var (
	exeLeaf = testutil.Leaf{Type: "application/octet-stream", Name: "invoice.exe", Body: []byte("MZ\x90\x00 an executable")}
	gtLeaf  = testutil.Leaf{Body: []byte("hello " + gtube)}
	zipLeaf = func(z []byte) testutil.Leaf {
		return testutil.Leaf{Type: "application/zip", Name: "files.zip", Body: z}
	}
)

// longText is GTUBE after more than n bytes of ordinary text lines.
func longText(ident string, n int) []byte {
	body := append(bytes.Repeat([]byte("a line of plain text\r\n"), n/22+1), gtube...)
	return testutil.NestedMessage(hdr(ident, "long"), 0, testutil.Leaf{Body: body})
}

// TestHostileContentScannedOverSMTP: the messages that were relayed with
// 250 because their content lay past the MIME walker's limits are now
// seen, at the default limits, and refused with their verdict.
func TestHostileContentScannedOverSMTP(t *testing.T) {
	e := newEnv(t, "", "")
	for _, tc := range []struct {
		name   string
		msg    []byte
		word   string
		reason string // the signal that must have seen the content
	}{
		{"GTUBE at depth 12", testutil.NestedMessage(hdr("h1", "deep"), 12, gtLeaf), "[OG-SPAM]", "builtin:GTUBE"},
		{"GTUBE in part 502", testutil.ManyParts(hdr("h2", "many"), 501, gtLeaf), "[OG-SPAM]", "builtin:GTUBE"},
		{"GTUBE after 10 MiB of text", longText("h3", 10<<20), "[OG-SPAM]", "builtin:GTUBE"},
		{"EICAR in a zip nested 4 deep", testutil.ManyParts(hdr("h4", "zip"), 1, zipLeaf(testutil.NestedZip(4, "eicar.com", []byte(eicar)))), "[OG-VIRUS]", "builtin:EICAR"},
		{"invoice.exe as part 502", testutil.ManyParts(hdr("h5", "exe"), 501, exeLeaf), "[OG-VIRUS]", "builtin:EXECUTABLE_ATTACHMENT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.send("a@out.example.net", string(tc.msg))
			r := replyOf(err)
			if r == nil || r.Code != 550 || !strings.Contains(r.Message, tc.word) {
				t.Fatalf("got %v, want 550 %s", err, tc.word)
			}
			id := idOf(t, err)
			if _, err := e.app.store.Raw(id, quarantine.Actor{Name: "test"}); err != nil {
				t.Errorf("not quarantined: %v", err)
			}
			rec, err := e.app.store.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rec.Reasons, func(r string) bool { return strings.HasPrefix(r, tc.reason+"(") }) || len(rec.Partial) > 0 {
				t.Errorf("reasons %q, partially scanned %q: want %s, scanned whole", rec.Reasons, rec.Partial, tc.reason)
			}
		})
	}
	if n := len(e.mail()); n != 0 {
		t.Errorf("relayed %d messages, want none", n)
	}
}

// lowLimits push the test messages past the walker's limits. The content
// model is off so that the verdict on what the engines did see is clean
// (it finds a message with no visible text spammy, which is right but
// beside the point here).
const lowLimits = `filter:
  engines:
    builtin: {content_model: {enabled: false}}
  limits: {max_depth: 5, max_parts: 10, max_part_bytes: 100000, max_archive_depth: 2}
`

// partialCase is one message past a limit and what the policy under test
// makes of it.
type partialCase struct {
	name   string
	msg    []byte
	code   int    // 250, 451 or 550
	limits string // the record's Partial, comma-joined
}

var (
	textTooDeep   = testutil.NestedMessage(hdr("p1", "textdeep"), 8, gtLeaf)
	exePastParts  = testutil.ManyParts(hdr("p2", "exeparts"), 10, exeLeaf)
	zipTooDeep    = testutil.ManyParts(hdr("p3", "zipdeep"), 1, zipLeaf(testutil.NestedZip(4, "eicar.com", []byte(eicar))))
	zipEncrypted  = testutil.ManyParts(hdr("p4", "zipenc"), 1, zipLeaf(testutil.EncryptedZip("report.pdf", []byte("%PDF-1.4"))))
	textPastBytes = longText("p5", 200000)
	textPastParts = testutil.ManyParts(hdr("p6", "textparts"), 10, gtLeaf)
)

// runPartial sends each case through an outguard whose domain has
// domainExtra, and checks the reply, what the next hop got, the quarantine
// and the log record.
func runPartial(t *testing.T, domainExtra string, cases []partialCase) {
	e := newEnv(t, domainExtra, lowLimits)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.mail())
			err := e.send("a@out.example.net", string(tc.msg))
			var id string
			if tc.code == 250 {
				if err != nil {
					t.Fatalf("got %v, want 250", err)
				}
				if n := len(e.mail()) - before; n != 1 {
					t.Fatalf("relayed %d, want 1", n)
				}
				e.flush()
				page, err := e.app.store.Search(quarantine.Query{Limit: 1})
				if err != nil || len(page.Records) != 1 {
					t.Fatalf("no log record: %v", err)
				}
				id = page.Records[0].ID
			} else {
				r := replyOf(err)
				want := smtp.EnhancedCode{tc.code / 100, 7, 1}
				if r == nil || r.Code != tc.code || r.EnhancedCode != want || !strings.Contains(r.Message, "[OG-UNSCANNABLE]") || !strings.Contains(r.Message, tc.limits) {
					t.Fatalf("got %v, want %d %v [OG-UNSCANNABLE] naming %s", err, tc.code, want, tc.limits)
				}
				if n := len(e.mail()) - before; n != 0 {
					t.Fatalf("relayed %d, want 0", n)
				}
				id = idOf(t, err)
			}
			e.flush()
			rec, err := e.app.store.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(rec.Partial, ","); got != tc.limits {
				t.Errorf("record partially scanned %q, want %q", got, tc.limits)
			}
			_, rawErr := e.app.store.Raw(id, quarantine.Actor{Name: "test"})
			switch tc.code {
			case 250:
				if rec.Status != quarantine.StatusAccepted || rec.Verdict != quarantine.VerdictClean {
					t.Errorf("record %v %v, want accepted clean", rec.Status, rec.Verdict)
				}
			case 451:
				if rec.Status != quarantine.StatusDeferred || rawErr == nil {
					t.Errorf("record %v, content kept %v; want deferred, nothing kept", rec.Status, rawErr == nil)
				}
			case 550:
				if rec.Status != quarantine.StatusQuarantined || rawErr != nil {
					t.Errorf("record %v, content %v; want quarantined before the 550", rec.Status, rawErr)
				}
			}
		})
	}
	// Refused as unscannable is not abuse: no ARF report.
	if n := len(e.reports()); n != 0 {
		t.Errorf("%d ARF reports sent, want none", n)
	}
}

func TestUnscannableDefaultPolicy(t *testing.T) {
	runPartial(t, "", []partialCase{
		{"text too deep relayed, flagged", textTooDeep, 250, "max_depth"},
		{"text past the part limit relayed, flagged", textPastParts, 250, "max_parts"},
		{"text past the part size relayed, flagged", textPastBytes, 250, "max_part_bytes"},
		{"executable past the part limit refused", exePastParts, 550, "max_parts"},
		{"archive nested too deep refused", zipTooDeep, 550, "max_archive_depth"},
		{"encrypted archive refused", zipEncrypted, 550, "archive_encrypted"},
	})
}

func TestUnscannableAccept(t *testing.T) {
	runPartial(t, "    unscannable: accept\n", []partialCase{
		{"executable past the part limit relayed, flagged", exePastParts, 250, "max_parts"},
		{"encrypted archive relayed, flagged", zipEncrypted, 250, "archive_encrypted"},
	})
}

func TestUnscannableBlock(t *testing.T) {
	runPartial(t, "    unscannable: block\n", []partialCase{
		{"text too deep refused", textTooDeep, 550, "max_depth"},
		{"text past the part size refused", textPastBytes, 550, "max_part_bytes"},
	})
}

func TestUnscannableTempfail(t *testing.T) {
	runPartial(t, "    unscannable: tempfail\n", []partialCase{
		{"text too deep deferred", textTooDeep, 451, "max_depth"},
		{"executable past the part limit deferred", exePastParts, 451, "max_parts"},
	})
}

// TestUnscannableTempfailNotCounted: a deferred message is counted toward
// automatic locking by none of its tries.
func TestUnscannableTempfailNotCounted(t *testing.T) {
	e := newEnv(t, "    unscannable: tempfail\n", lowLimits)
	for i := 0; i < 3; i++ {
		if r := replyOf(e.send("a@out.example.net", string(textTooDeep))); r == nil || r.Code != 451 {
			t.Fatalf("try %d: got %v, want 451", i, r)
		}
	}
	if u, err := e.app.ids.Usage(context.Background(), "out.example.net", "p1"); !errors.Is(err, identity.ErrNotFound) {
		t.Errorf("identity counted after deferrals: %+v, %v", u, err)
	}
}

// TestUnscannableUserOverridesDomain: a user's own unscannable setting
// wins over its domain's.
func TestUnscannableUserOverridesDomain(t *testing.T) {
	e := newEnv(t, "    unscannable: block\n", lowLimits)
	b, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "      - name: trial\n", "      - name: trial\n        unscannable: accept\n", 1)
	if y == string(b) {
		t.Fatal("no user entry to override in the test configuration")
	}
	if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if err := e.send("a@out.example.net", string(textTooDeep)); err != nil {
		t.Fatalf("user with unscannable: accept under a blocking domain: %v, want 250", err)
	}
}

// TestMonitorRelaysUnscannable: monitor mode refuses nothing, unscannable
// mail included, and still flags it.
func TestMonitorRelaysUnscannable(t *testing.T) {
	e := newEnv(t, "    unscannable: block\n    monitor: true\n", lowLimits)
	if err := e.send("a@out.example.net", string(textTooDeep)); err != nil {
		t.Fatalf("monitor mode: %v, want 250", err)
	}
	e.flush()
	page, err := e.app.store.Search(quarantine.Query{Limit: 1})
	if err != nil || len(page.Records) != 1 || !slices.Equal(page.Records[0].Partial, []string{"max_depth"}) {
		t.Fatalf("record: %v %+v, want flagged max_depth", err, page.Records)
	}
}

// TestHamWithinShippedLimits: with the limits of the shipped example
// configuration (the config package's defaults), no legitimate message of
// the corpora is partially scanned.
func TestHamWithinShippedLimits(t *testing.T) {
	cfg, err := config.Load("../testdata/outguard.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClassifier(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, dir := range []string{"ham", "modern/ham"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no corpus in testdata/%s", dir)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := filter.ParseBytes(raw, cl.Limits())
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Gaps) > 0 {
				t.Errorf("%s: partially scanned: %v", f, m.Gaps)
			}
			n++
		}
	}
	t.Logf("%d legitimate messages scanned whole", n)
}
