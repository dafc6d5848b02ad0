package feedback

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
)

// testCountingRules ingests one report per case and checks whether it was
// counted toward automatic locking, and why not.
func testCountingRules(t *testing.T, be testBackend) {
	optIn := config.Reporter{Name: "trusted", Domains: []string{"trusted.example"}, CountIdentityHeader: true}
	tests := []struct {
		name       string
		raw        []byte
		notCounted string
		method     string
		want       Complaint // when counted
	}{
		{"counted by message id", report("fbl@mailbox.example", "abuse", 1, original("alice.1@customer.example", "")), "", "message-id",
			Complaint{Domain: "out.example.net", User: "web7", Identity: "alice@customer.example", TxID: txAlice.TxID}},
		{"counted by trace token", report("fbl@mailbox.example", "fraud", 2, original("", "X-Outguard-Trace: tok-bob\r\n")), "", "trace-token",
			Complaint{Domain: "out.example.net", User: "web8", Identity: "bob@customer.example", TxID: txBob.TxID}},
		{"unlisted reporter", report("someone@elsewhere.example", "abuse", 3, original("alice.1@customer.example", "")), NotCountedUnlisted, "message-id", Complaint{}},
		{"not attributed", report("fbl@mailbox.example", "abuse", 4, original("unknown@x.example", "")), NotCountedUnattributed, "none", Complaint{}},
		{"identity header only", report("fbl@mailbox.example", "abuse", 5, original("", "X-AuthUser: carol@customer.example\r\n")), NotCountedIdentityOnly, "identity-header", Complaint{}},
		{"identity header, reporter opts in", report("fbl@trusted.example", "abuse", 6, original("", "X-AuthUser: carol@customer.example\r\n")), "", "identity-header",
			Complaint{Domain: "out.example.net", User: "web7", Identity: "carol@customer.example"}},
		{"no identity", report("fbl@mailbox.example", "abuse", 7, original("anon.1@customer.example", "")), NotCountedNoIdentity, "message-id", Complaint{}},
		{"not an abuse report", report("fbl@mailbox.example", "not-spam", 8, original("alice.1@customer.example", "")), NotCountedType, "message-id", Complaint{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, be, settings(false, fbl, optIn))
			res := e.ingest(t, tt.raw)
			if res.Method != tt.method || res.NotCounted != tt.notCounted || res.Counted != (tt.notCounted == "") {
				t.Fatalf("attribution %q counted %v not_counted %q; want %q, %v, %q", res.Method, res.Counted, res.NotCounted,
					tt.method, tt.notCounted == "", tt.notCounted)
			}
			if res.ID == "" || len(e.stored(t)) != 1 {
				t.Errorf("id %q, %d stored; want every accepted report stored", res.ID, len(e.stored(t)))
			}
			if tt.notCounted != "" {
				if len(e.locks.seen) != 0 || len(e.log.complaints) != 0 {
					t.Errorf("not counted, yet observed %+v and marked %v", e.locks.seen, e.log.complaints)
				}
				if got := e.counter("outcomes", "not_counted"); got != 1 {
					t.Errorf("not_counted outcome: %v, want 1", got)
				}
				return
			}
			if len(e.locks.seen) != 1 || e.locks.seen[0] != tt.want {
				t.Errorf("observed %+v, want %+v", e.locks.seen, tt.want)
			}
			if tt.want.TxID != "" && len(e.log.complaints[tt.want.TxID]) != 1 {
				t.Errorf("log record complaints: %v, want one on %s", e.log.complaints, tt.want.TxID)
			}
			if got := e.counter("outcomes", "counted"); got != 1 {
				t.Errorf("counted outcome: %v, want 1", got)
			}
		})
	}
}

// testSameReportTwice: the very same report again is not stored or
// counted; a second, different report of the same reporter about the same
// transaction is stored but not counted; another reporter's counts.
func testSameReportTwice(t *testing.T, be testBackend) {
	other := config.Reporter{Name: "other", Domains: []string{"other.example"}}
	e := newEnv(t, be, settings(false, fbl, other))
	orig := original("alice.1@customer.example", "")
	first := e.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig))
	if !first.Counted {
		t.Fatalf("first report: %+v, want counted", first)
	}

	again := e.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig))
	if !again.Duplicate || again.DuplicateOf != first.ID || again.ID != "" || again.Counted || again.NotCounted != NotCountedDuplicate {
		t.Errorf("same report again: %+v; want a duplicate of %s, not stored", again, first.ID)
	}
	second := e.ingest(t, report("fbl@mailbox.example", "abuse", 2, orig))
	if !second.Duplicate || second.DuplicateOf != first.ID || second.ID == "" || second.Counted {
		t.Errorf("second complaint about the same mail: %+v; want stored, not counted, duplicate of %s", second, first.ID)
	}
	third := e.ingest(t, report("fbl@other.example", "abuse", 3, orig))
	if !third.Counted || third.Duplicate {
		t.Errorf("another reporter's complaint: %+v; want counted", third)
	}
	if n := len(e.stored(t)); n != 3 {
		t.Errorf("%d reports stored, want 3", n)
	}
	if n := len(e.locks.seen); n != 2 {
		t.Errorf("%d complaints counted, want 2", n)
	}
	if got := e.counter("outcomes", "duplicate"); got != 2 {
		t.Errorf("duplicate outcome: %v, want 2", got)
	}

	// The index is on disk: a new intake over the same database still
	// knows the report.
	e.in.Stop()
	e.reg = prometheus.NewRegistry()
	e.in = e.open(t)
	e.in.Configure(settings(false, fbl, other))
	if r := e.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig)); !r.Duplicate || r.DuplicateOf != first.ID {
		t.Errorf("after reopening: %+v, want a duplicate of %s", r, first.ID)
	}
}

// testReporterMatching: a reporter matches by envelope sender or From
// domain, and by client network when it lists networks; an upload has no
// client, so it never matches a reporter restricted to networks.
func testReporterMatching(t *testing.T, be testBackend) {
	netRep := config.Reporter{Name: "bynet", Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Domains: []string{"net.example"}}
	e := newEnv(t, be, settings(false, netRep, fbl))
	orig := func(n int) string { return original("alice.1@customer.example", "X-N: "+string(rune('a'+n))+"\r\n") }
	tests := []struct {
		name            string
		from            string
		client, envFrom string // "" client: an upload
		want            string
	}{
		{"From domain", "fbl@mailbox.example", "", "", "mailbox"},
		{"From domain in upper case", "fbl@MailBox.Example", "", "", "mailbox"},
		{"envelope sender domain, trailing dot", "someone@elsewhere.example", "198.51.100.1", "<bounce@Mailbox.Example.>", "mailbox"},
		{"network and domain", "fbl@net.example", "192.0.2.7", "fbl@net.example", "bynet"},
		{"IPv4-mapped client", "fbl@net.example", "::ffff:192.0.2.7", "fbl@net.example", "bynet"},
		{"domain outside the network", "fbl@net.example", "198.51.100.1", "fbl@net.example", ""},
		{"upload of a network-bound reporter", "fbl@net.example", "", "", ""},
		{"unknown", "fbl@elsewhere.example", "192.0.2.7", "x@elsewhere.example", ""},
	}
	for i, tt := range tests {
		raw := report(tt.from, "abuse", i, orig(i))
		var res Result
		if tt.client == "" {
			res = e.ingest(t, raw)
		} else {
			res = e.ingestSMTP(t, raw, tt.client, tt.envFrom)
		}
		if res.Reporter != tt.want {
			t.Errorf("%s: reporter %q, want %q", tt.name, res.Reporter, tt.want)
		}
		if tt.want == "" && res.NotCounted != NotCountedUnlisted {
			t.Errorf("%s: not_counted %q, want %q", tt.name, res.NotCounted, NotCountedUnlisted)
		}
	}
}

// testNotFeedback: a message that is not a report is refused with
// ErrNotFeedback and its parse result; nothing is stored.
func testNotFeedback(t *testing.T, be testBackend) {
	e := newEnv(t, be, settings(false, fbl))
	res, err := e.in.Ingest(context.Background(), []byte("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"), "upload")
	if !errors.Is(err, ErrNotFeedback) {
		t.Fatalf("err %v, want ErrNotFeedback", err)
	}
	if res.Parse.OK || res.Parse.Error == "" || res.Parse.File != "upload" || res.ID != "" {
		t.Errorf("result %+v; want the parse refusal, no id", res)
	}
	if n := len(e.stored(t)); n != 0 {
		t.Errorf("%d stored, want 0", n)
	}
	if got := e.counter("ingested", "refused", "none"); got != 1 {
		t.Errorf("refused: %v, want 1", got)
	}
	// Over the size limit: refused as well, before attribution.
	s := settings(false, fbl)
	s.MaxBytes = 200
	e.in.Configure(s)
	if e.in.MaxBytes() != 200 {
		t.Fatalf("MaxBytes %d after Configure, want 200", e.in.MaxBytes())
	}
	if _, err := e.in.Ingest(context.Background(), report("fbl@mailbox.example", "abuse", 1, original("alice.1@customer.example", "")), "big"); !errors.Is(err, ErrNotFeedback) {
		t.Errorf("report over MaxBytes: %v, want ErrNotFeedback", err)
	}
}

// testLocked: the complaint that makes the lock observer lock the identity
// says so.
func testLocked(t *testing.T, be testBackend) {
	e := newEnv(t, be, settings(false, fbl))
	for i := 1; i <= 3; i++ {
		// One reporter counts once per transaction: complain about three
		// messages of the identity.
		e.log.byMsgID["alice."+string(rune('0'+i))+"@customer.example"] = txWithID(txAlice, i)
		orig := original("alice."+string(rune('0'+i))+"@customer.example", "")
		res := e.ingest(t, report("fbl@mailbox.example", "abuse", i, orig))
		if !res.Counted || res.Locked != (i == 3) {
			t.Errorf("complaint %d: counted %v locked %v; want counted, locked only by the third", i, res.Counted, res.Locked)
		}
	}
}

func txWithID(r arf.TxRef, i int) arf.TxRef {
	r.TxID = r.TxID[:len(r.TxID)-1] + string(rune('0'+i))
	return r
}

// testLearning: with learning on, an abuse or fraud complaint attributed
// to a transaction teaches its original; a report attributed by identity
// header alone, of another type, or with learning off teaches nothing. A
// failing model leaves the complaint counted.
func testLearning(t *testing.T, be testBackend) {
	optIn := config.Reporter{Name: "trusted", Domains: []string{"mailbox.example"}, CountIdentityHeader: true}
	e := newEnv(t, be, settings(true, optIn))
	orig := original("alice.1@customer.example", "")
	res := e.ingest(t, report("fbl@mailbox.example", "abuse", 1, orig))
	if !res.Counted || !res.Learned || len(e.learner.taught) != 1 || !bytes.Contains(e.learner.taught[0], []byte("Message-ID: <alice.1@customer.example>")) {
		t.Fatalf("abuse complaint: counted %v learned %v, taught %q; want the original taught", res.Counted, res.Learned, e.learner.taught)
	}
	res = e.ingest(t, report("fbl@mailbox.example", "virus", 2, original("bob.1@customer.example", "")))
	if !res.Counted || res.Learned {
		t.Errorf("virus complaint: counted %v learned %v; want counted, not learned", res.Counted, res.Learned)
	}
	res = e.ingest(t, report("fbl@mailbox.example", "abuse", 3, original("", "X-AuthUser: carol@customer.example\r\n")))
	if !res.Counted || res.Learned {
		t.Errorf("identity-header complaint: counted %v learned %v; want counted, not learned", res.Counted, res.Learned)
	}
	if n := len(e.learner.taught); n != 1 {
		t.Errorf("taught %d, want 1", n)
	}

	e.learner.err = errLearn
	e.log.byMsgID["alice.2@customer.example"] = txWithID(txAlice, 2)
	res = e.ingest(t, report("fbl@mailbox.example", "fraud", 4, original("alice.2@customer.example", "")))
	if !res.Counted || res.Learned {
		t.Errorf("with a failing model: counted %v learned %v; want counted, not learned", res.Counted, res.Learned)
	}

	e.learner.err = nil
	e.in.Configure(settings(false, optIn))
	e.log.byMsgID["alice.3@customer.example"] = txWithID(txAlice, 3)
	if res = e.ingest(t, report("fbl@mailbox.example", "abuse", 5, original("alice.3@customer.example", ""))); res.Learned {
		t.Errorf("learning off: learned")
	}
	if n := len(e.learner.taught); n != 1 {
		t.Errorf("taught %d in all, want 1", n)
	}
}

// testRetention stores a report, lets arf.feedback_retention pass and runs
// retention: the report and its duplicate index are gone, a newer report
// stays.
func testRetention(t *testing.T, be testBackend) {
	s := settings(false, fbl)
	s.Retention = 30 * 24 * time.Hour
	e := newEnv(t, be, s)
	old := report("fbl@mailbox.example", "abuse", 1, original("alice.1@customer.example", ""))
	e.ingest(t, old)
	e.clock.Advance(29 * 24 * time.Hour)
	newer := e.ingest(t, report("fbl@mailbox.example", "abuse", 2, original("bob.1@customer.example", "")))
	e.in.PruneNow()
	if n := len(e.stored(t)); n != 2 {
		t.Fatalf("within retention: %d reports, want 2", n)
	}
	e.clock.Advance(2 * 24 * time.Hour)
	e.in.PruneNow()
	if list := e.stored(t); len(list) != 1 || list[0].ID != newer.ID {
		t.Fatalf("after 31 days: %+v, want only %s", list, newer.ID)
	}
	if got := e.counter("pruned"); got != 1 {
		t.Errorf("pruned: %v, want 1", got)
	}
	// The pruned report's index entries went with it: the same report is
	// new again, and counts again (its per-reporter key is gone too).
	res := e.ingest(t, old)
	if res.Duplicate || res.ID == "" || !res.Counted {
		t.Errorf("the pruned report again: %+v; want stored and counted, not a duplicate", res)
	}
}

// testRetentionInBatches prunes more reports than one write transaction
// removes.
func testRetentionInBatches(t *testing.T, be testBackend) {
	e := newEnv(t, be, settings(false, fbl))
	const n = 502 // more than one write transaction removes (500)
	for i := range n {
		e.ingest(t, report("x@elsewhere.example", "abuse", i, original("none@x.example", "")))
	}
	e.clock.Advance(config.DefaultFeedbackRetention + time.Hour)
	e.in.PruneNow()
	if got := len(e.stored(t)); got != 0 {
		t.Errorf("%d left, want 0", got)
	}
	if got := e.counter("pruned"); got != n {
		t.Errorf("pruned %v, want %d", got, n)
	}
}

// testList pages through stored reports newest first and filters by
// whether they counted.
func testList(t *testing.T, be testBackend) {
	e := newEnv(t, be, settings(false, fbl))
	var ids []string
	for i := range 5 {
		from := "fbl@mailbox.example"
		if i%2 == 1 {
			from = "x@elsewhere.example" // not counted
		}
		e.log.byMsgID["alice.p"+string(rune('0'+i))+"@customer.example"] = txWithID(txAlice, i+4)
		ids = append(ids, e.ingest(t, report(from, "abuse", i, original("alice.p"+string(rune('0'+i))+"@customer.example", ""))).ID)
		e.clock.Advance(time.Second)
	}
	var got []string
	before := ""
	for {
		page, next, err := e.in.List(2, before, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		before = next
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if len(got) != len(want) {
		t.Fatalf("pages: %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pages: %v, want %v", got, want)
		}
	}
	yes, no := true, false
	if c, _, _ := e.in.List(100, "", &yes); len(c) != 3 || c[0].ID != ids[4] {
		t.Errorf("counted: %d, want 3 newest first", len(c))
	}
	if c, _, _ := e.in.List(100, "", &no); len(c) != 2 || c[0].ID != ids[3] || c[0].NotCounted != NotCountedUnlisted {
		t.Errorf("not counted: %+v, want 2 newest first", c)
	}
}

// testStartStop: Start runs retention at once; Stop waits for it and may
// be called twice.
func testStartStop(t *testing.T, be testBackend) {
	e := newEnv(t, be, settings(false, fbl))
	e.ingest(t, report("fbl@mailbox.example", "abuse", 1, original("alice.1@customer.example", "")))
	e.clock.Advance(config.DefaultFeedbackRetention + time.Hour)
	e.in.Start()
	e.in.Stop()
	e.in.Stop()
	if n := len(e.stored(t)); n != 0 {
		t.Errorf("%d left after Start's retention run, want 0", n)
	}
}
