package ops_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/quarantine"
)

// The operations layer is where every scope check and every audit entry
// is made; the front ends' tests check their requests and replies. These
// tests call the layer directly.

// newEnv is the fixtures with a content model and campaign detection.
func newEnv(t *testing.T) (*admintest.Env, *admintest.Teacher) {
	return newEnvWith(t, func(*admintest.Env) {})
}

// newEnvWith is newEnv with more set-up.
func newEnvWith(t *testing.T, setup func(*admintest.Env)) (*admintest.Env, *admintest.Teacher) {
	t.Helper()
	teacher := &admintest.Teacher{}
	e := admintest.New(t, func(e *admintest.Env) {
		teacher.Store = e.Store
		e.Opts.Teacher = teacher
		e.Opts.Campaigns = admintest.NewCampaigns(e)
		setup(e)
	})
	return e, teacher
}

// envFunc makes the fixtures on one audit backend.
type envFunc func(t *testing.T) (*admintest.Env, *admintest.Teacher)

// forAuditBackends runs test with the audit trail in the bbolt bucket
// and in PostgreSQL (skipped, visibly, without a test server), the entries
// recorded by node "node-a".
func forAuditBackends(t *testing.T, test func(*testing.T, envFunc)) {
	t.Run("bbolt", func(t *testing.T) {
		test(t, func(t *testing.T) (*admintest.Env, *admintest.Teacher) {
			return newEnvWith(t, func(e *admintest.Env) { e.Opts.Node = "node-a" })
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pool := pgtest.Pool(t)
		test(t, func(t *testing.T) (*admintest.Env, *admintest.Teacher) {
			return newEnvWith(t, func(e *admintest.Env) {
				a, err := ops.OpenPgAudit(pool, "node-a")
				if err != nil {
					t.Fatal(err)
				}
				e.Opts.Audit, e.Opts.DB = a, nil
			})
		})
	})
}

var (
	root  = admintest.Root
	out   = admintest.Out
	other = admintest.Other
)

// TestScopeRefusals: a token of one domain may not act on another
// domain's objects, nor on what every domain shares; each refusal is
// ErrForbidden and changes nothing (no audit entry, no delivery, no
// lesson, no lock).
func TestScopeRefusals(t *testing.T) { forAuditBackends(t, testScopeRefusals) }

func testScopeRefusals(t *testing.T, newEnv envFunc) {
	e, teacher := newEnv(t)
	ctx := context.Background()
	if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: identity.UserTarget(admintest.DomOther, "otheruser"), Reason: "setup", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	locks0 := e.LockCount()
	read := func() ([]byte, error) { return []byte("raw"), nil }
	otherUser := identity.UserTarget(admintest.DomOther, "otheruser")
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"lock another domain's user", func() error {
			_, err := e.Ops.Lock(ctx, out, ops.LockOrder{Kind: "user", Name: "otheruser", Reason: "x"})
			return err
		}},
		{"lock another domain's user naming one's own", func() error {
			_, err := e.Ops.Lock(ctx, out, ops.LockOrder{Kind: "user", Domain: admintest.DomOut, Name: "otheruser", Reason: "x"})
			return err
		}},
		{"lock another domain's identity", func() error {
			_, err := e.Ops.Lock(ctx, out, ops.LockOrder{Kind: "identity", Domain: admintest.DomOther, Name: "eve", Reason: "x"})
			return err
		}},
		{"unlock another domain's user", func() error {
			_, err := e.Ops.Unlock(ctx, out, ops.UnlockOrder{Kind: "user", Name: "otheruser", Reason: "x"})
			return err
		}},
		{"read another domain's lock", func() error { _, err := e.Ops.GetLock(ctx, out, otherUser); return err }},
		{"read another domain's history", func() error { _, err := e.Ops.History(ctx, out, otherUser); return err }},
		{"read another domain's usage", func() error {
			_, err := e.Ops.Usage(ctx, out, identity.IdentityTarget(admintest.DomOther, "mallory@other.example"))
			return err
		}},
		{"read another domain's message", func() error { _, err := e.Ops.Message(out, e.SpamOther); return err }},
		{"release another domain's message", func() error { _, err := e.Ops.Release(ctx, out, ops.ReleaseOrder{ID: e.SpamOther}); return err }},
		{"delete another domain's message", func() error { _, err := e.Ops.Delete(ctx, out, e.SpamOther, "", ""); return err }},
		{"teach another domain's message", func() error {
			_, err := e.Ops.LearnStored(ctx, out, e.SpamOther, true, "", "")
			return err
		}},
		{"teach an upload", func() error { _, err := e.Ops.LearnUpload(ctx, out, true, read); return err }},
		{"export the overlay", func() error { _, err := e.Ops.ExportOverlay(out); return err }},
		{"import the overlay", func() error {
			_, err := e.Ops.ImportOverlay(out, func(int64) ([]byte, error) { return []byte("overlay"), nil })
			return err
		}},
		{"reset the overlay", func() error { _, err := e.Ops.ResetOverlay(out); return err }},
		{"ingest feedback", func() error { _, err := e.Ops.IngestFeedback(ctx, out, "", read); return err }},
		{"reload", func() error { return e.Ops.Reload(out, "test") }},
		{"confirm a campaign", func() error { _, err := e.Ops.SetConfirmed(ctx, out, admintest.CampB, true, ""); return err }},
		{"see a campaign of another domain only", func() error { _, err := e.Ops.Campaign(ctx, out, admintest.CampC); return err }},
		{"lock a campaign of another domain only", func() error {
			_, err := e.Ops.LockCampaign(ctx, out, admintest.CampC, "x", "", "")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, ops.ErrForbidden) {
				t.Errorf("got %v, want ErrForbidden", err)
			}
		})
	}
	if n := e.AuditCount(); n != 0 {
		t.Errorf("refusals wrote %d audit entries", n)
	}
	if e.Deliver.Count() != 0 || len(teacher.Taught()) != 0 || e.LockCount() != locks0 || e.Reloads != 0 || e.Feedback.Calls != 0 {
		t.Errorf("a refusal changed something: %d deliveries, %d lessons, %d locks (want %d), %d reloads, %d ingested",
			e.Deliver.Count(), len(teacher.Taught()), e.LockCount(), locks0, e.Reloads, e.Feedback.Calls)
	}
}

// TestScopedListings: a token of one domain lists only its domain's
// objects, and nothing when it names another domain.
func TestScopedListings(t *testing.T) { forAuditBackends(t, testScopedListings) }

func testScopedListings(t *testing.T, newEnv envFunc) {
	e, _ := newEnv(t)
	ctx := context.Background()
	for _, tg := range []identity.Target{identity.UserTarget(admintest.DomOut, "webhost1"), identity.UserTarget(admintest.DomOther, "otheruser")} {
		if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: tg, Reason: "setup", Actor: "root"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []ops.Principal{root, out} {
		if _, err := e.Ops.Unlock(ctx, p, ops.UnlockOrder{Kind: "user", Name: "webhost1", Reason: "listing " + p.Name}); err != nil && !errors.Is(err, identity.ErrNotLocked) {
			t.Fatal(err)
		}
	}
	e.Feedback.List = []feedback.Result{{ID: "B", Domain: admintest.DomOut}, {ID: "A", Domain: admintest.DomOther}}
	check := func(what string, domains []string, want string) {
		t.Helper()
		if len(domains) == 0 && want != "" {
			t.Errorf("%s: nothing listed, want %s's", what, want)
		}
		for _, d := range domains {
			if d != want {
				t.Errorf("%s: listed an object of %q, want only %q", what, d, want)
			}
		}
	}
	locks, err := e.Ops.Locks(ctx, out, identity.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range locks {
		ds = append(ds, l.Domain)
	}
	check("locks", ds, admintest.DomOut)
	if l, _ := e.Ops.Locks(ctx, out, identity.ListFilter{Domain: admintest.DomOther}); len(l) != 0 {
		t.Errorf("locks of another domain: got %d", len(l))
	}

	page, err := e.Ops.Search(out, quarantine.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ds = nil
	for _, r := range page.Records {
		ds = append(ds, r.Domain)
	}
	check("search", ds, admintest.DomOut)

	rows, err := e.Ops.Report(ctx, out, ops.ReportQuery{GroupBy: quarantine.GroupUser, Class: quarantine.ClassAll,
		From: e.Clock.Now().Add(-24 * time.Hour), To: e.Clock.Now(), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ds = nil
	for _, r := range rows {
		ds = append(ds, r.Domain)
	}
	check("report", ds, admintest.DomOut)
	if r, _ := e.Ops.Report(ctx, out, ops.ReportQuery{GroupBy: quarantine.GroupUser, Domain: admintest.DomOther, Limit: 10}); len(r) != 0 {
		t.Errorf("report of another domain: got %d rows", len(r))
	}

	entries, err := e.Ops.Audit(ctx, out, ops.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ds = nil
	for _, a := range entries {
		ds = append(ds, a.Target.Domain)
	}
	check("audit", ds, admintest.DomOut)
	if a, _ := e.Ops.Audit(ctx, out, ops.AuditFilter{Domain: admintest.DomOther}); len(a) != 0 {
		t.Errorf("audit of another domain: got %d entries", len(a))
	}

	fl, err := e.Ops.ListFeedback(ctx, out, ops.FeedbackQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	ds = nil
	for _, r := range fl.Reports {
		ds = append(ds, r.Domain)
	}
	check("feedback", ds, admintest.DomOut)
	if e.Feedback.Query.Domain != admintest.DomOut {
		t.Errorf("feedback query domain %q, want the token's", e.Feedback.Query.Domain)
	}

	cs, err := e.Ops.ListCampaigns(ctx, other, ops.CampaignQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].ID != admintest.CampA || cs[1].ID != admintest.CampC {
		t.Errorf("campaigns of other.example.org: got %+v, want A and C", cs)
	}
	d, err := e.Ops.Campaign(ctx, out, admintest.CampA)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Members) != 2 || d.HiddenIdentities != 2 {
		t.Errorf("campaign A for out.example.net: %d members, %d hidden; want 2 and 2", len(d.Members), d.HiddenIdentities)
	}

	wl, err := e.Ops.WouldLocks(ctx, out, identity.WouldLockFilter{Domain: admintest.DomOther})
	if err != nil || len(wl) != 0 {
		t.Errorf("would-locks of another domain: %v, %d", err, len(wl))
	}
}

// TestAuditTrail: every change writes one entry, after it succeeded,
// with the principal's name and scope, the target, the reason, and the
// front end (via) in the detail.
func TestAuditTrail(t *testing.T) { forAuditBackends(t, testAuditTrail) }

func testAuditTrail(t *testing.T, newEnv envFunc) {
	e, teacher := newEnv(t)
	ctx := context.Background()
	e.Feedback.Res = feedback.Result{Parse: arf.Result{OK: true, FeedbackType: "abuse"}, Method: "message-id",
		TxID: e.SpamOut, Domain: admintest.DomOut, Identity: "alice@customer.example", Counted: true}
	type want struct {
		action, actor, scope, kind, domain, name, reason, detail string
	}
	for _, tc := range []struct {
		name string
		do   func() error
		want want
	}{
		{"lock", func() error {
			_, err := e.Ops.Lock(ctx, out, ops.LockOrder{Kind: "user", Name: "webhost2", Reason: " compromised ", Duration: "2h", Via: "console"})
			return err
		}, want{ops.AuditLock, "outtok", admintest.DomOut, "user", admintest.DomOut, "webhost2", "compromised",
			"for 2h0m0s until 2026-03-01T14:00:00Z; console"}},
		{"unlock", func() error {
			_, err := e.Ops.Unlock(ctx, out, ops.UnlockOrder{Kind: "user", Name: "webhost2", Reason: "fixed"})
			return err
		}, want{ops.AuditUnlock, "outtok", admintest.DomOut, "user", admintest.DomOut, "webhost2", "fixed", ""}},
		{"lock from a message", func() error {
			_, err := e.Ops.Lock(ctx, root, ops.LockOrder{Kind: "identity", Domain: admintest.DomOut, Name: "alice@customer.example", Reason: "spam", Message: e.SpamOut})
			return err
		}, want{ops.AuditLock, "root", "all", "identity", admintest.DomOut, "alice@customer.example", "spam (message " + e.SpamOut + ")", "permanent"}},
		{"release", func() error {
			_, err := e.Ops.Release(ctx, out, ops.ReleaseOrder{ID: e.SpamOut, Reason: "not spam", Learn: true, Via: "console"})
			return err
		},
			want{ops.AuditRelease, "outtok", admintest.DomOut, "message", admintest.DomOut, e.SpamOut, "not spam", "and learn as ham; console"}},
		{"delete", func() error { _, err := e.Ops.Delete(ctx, root, e.SpamOther, "", ""); return err },
			want{ops.AuditDelete, "root", "all", "message", admintest.DomOther, e.SpamOther, "", ""}},
		{"learn", func() error {
			_, err := e.Ops.LearnStored(ctx, out, e.SpamOut, true, "confirmed", "console")
			return err
		},
			want{ops.AuditLearn, "outtok", admintest.DomOut, "message", admintest.DomOut, e.SpamOut, "confirmed", "as spam: score 1.50 -> 5.50 (seed-test+3); console"}},
		{"learn an upload", func() error {
			_, err := e.Ops.LearnUpload(ctx, root, false, func() ([]byte, error) { return []byte("12345"), nil })
			return err
		}, want{ops.AuditLearn, "root", "all", "upload", "", "5 bytes", "", "as ham: score 1.50 -> -2.50 (seed-test+4)"}},
		{"import the overlay", func() error {
			_, err := e.Ops.ImportOverlay(root, func(int64) ([]byte, error) { return []byte("overlay"), nil })
			return err
		}, want{ops.AuditModel, "root", "all", "model", "", "overlay", "", "imported: seed-test+4"}},
		{"reset the overlay", func() error { _, err := e.Ops.ResetOverlay(root); return err },
			want{ops.AuditModel, "root", "all", "model", "", "overlay", "", "reset to the seed"}},
		{"ingest feedback", func() error {
			_, err := e.Ops.IngestFeedback(ctx, root, "fbl\x01.eml", func() ([]byte, error) { return []byte("report"), nil })
			return err
		}, want{ops.AuditFeedback, "root", "all", "feedback", admintest.DomOut, "fbl.eml", "",
			"abuse alice@customer.example tx " + e.SpamOut + " counted true locked false"}},
		{"reload", func() error { return e.Ops.Reload(root, "POST /-/reload") },
			want{ops.AuditReload, "root", "all", "config", "", "", "", "POST /-/reload"}},
		{"confirm a campaign", func() error { _, err := e.Ops.SetConfirmed(ctx, root, admintest.CampB, true, "console"); return err },
			want{ops.AuditConfirm, "root", "all", "campaign", "", admintest.CampB, "", "console"}},
		{"unconfirm a campaign", func() error { _, err := e.Ops.SetConfirmed(ctx, root, admintest.CampB, false, ""); return err },
			want{ops.AuditUnconfirm, "root", "all", "campaign", "", admintest.CampB, "", ""}},
		{"lock a campaign", func() error {
			_, err := e.Ops.LockCampaign(ctx, out, admintest.CampB, "run", "", "console")
			return err
		},
			want{ops.AuditLock, "outtok", admintest.DomOut, "identity", admintest.DomOut, "dave@customer.example",
				"run (campaign " + admintest.CampB + ")", "permanent; campaign " + admintest.CampB + "; console"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.AuditCount()
			if err := tc.do(); err != nil {
				t.Fatal(err)
			}
			entries := e.AuditEntries(ops.AuditFilter{})
			// Lock from a message also writes the lesson's entry, first.
			if tc.name == "lock from a message" {
				if len(entries) != before+2 || entries[0].Action != ops.AuditLearn || entries[0].Reason != "locked from this message" {
					t.Fatalf("got %+v, want the lock's and the lesson's entries", entries[:len(entries)-before])
				}
				entries = entries[1:]
			} else if tc.name == "release" {
				if len(entries) != before+2 || entries[0].Action != ops.AuditLearn || entries[0].Reason != "released: not spam" {
					t.Fatalf("got %+v, want the release's and the lesson's entries", entries[:len(entries)-before])
				}
				entries = entries[1:]
			} else if len(entries) != before+1 {
				t.Fatalf("got %d new entries, want 1", len(entries)-before)
			}
			g := entries[0]
			got := want{g.Action, g.Actor, g.Scope, g.Target.Kind, g.Target.Domain, g.Target.Name, g.Reason, g.Detail}
			if got != tc.want {
				t.Errorf("entry:\n got %+v\nwant %+v", got, tc.want)
			}
			if !g.At.Equal(e.Clock.Now()) {
				t.Errorf("entry at %v, want the clock's %v", g.At, e.Clock.Now())
			}
			if g.Node != "node-a" {
				t.Errorf("entry recorded by node %q, want node-a", g.Node)
			}
		})
	}
	if n := len(teacher.Taught()); n != 3 {
		t.Errorf("%d stored lessons, want 3 (the lock's message, the release, the confirmation)", n)
	}
}

// TestNoAuditOnFailureOrNoChange: a refused or failed action, and one
// that changes nothing (a second release or deletion, a report that is
// not feedback), writes no entry.
func TestNoAuditOnFailureOrNoChange(t *testing.T) {
	forAuditBackends(t, testNoAuditOnFailureOrNoChange)
}

func testNoAuditOnFailureOrNoChange(t *testing.T, newEnv envFunc) {
	e, _ := newEnv(t)
	ctx := context.Background()
	if _, err := e.Ops.Release(ctx, root, ops.ReleaseOrder{ID: e.SpamOut, Learn: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Ops.Delete(ctx, root, e.SpamOther, "", ""); err != nil {
		t.Fatal(err)
	}
	before := e.AuditCount()
	r, err := e.Ops.Release(ctx, root, ops.ReleaseOrder{ID: e.SpamOut, Learn: true})
	if err != nil || !r.Already || r.Learned != nil || e.Deliver.Count() != 1 {
		t.Errorf("second release: %+v, %v, %d deliveries; want already, no lesson, one delivery", r, err, e.Deliver.Count())
	}
	d, err := e.Ops.Delete(ctx, root, e.SpamOther, "", "")
	if err != nil || !d.Already || d.By != "root" {
		t.Errorf("second delete: %+v, %v; want already, by root", d, err)
	}
	e.Feedback.Res = feedback.Result{Parse: arf.Result{Error: "not-arf"}}
	e.Feedback.Err = feedback.ErrNotFeedback
	if res, err := e.Ops.IngestFeedback(ctx, root, "", func() ([]byte, error) { return []byte("x"), nil }); err != nil || res.Parse.OK {
		t.Errorf("not a report: %+v, %v; want a result, no error", res, err)
	}
	e.Feedback.Err = errors.New("disk full")
	if _, err := e.Ops.IngestFeedback(ctx, root, "", func() ([]byte, error) { return []byte("x"), nil }); err == nil {
		t.Error("failed ingest: no error")
	}
	e.ReloadErr = errors.New("bad config")
	if err := e.Ops.Reload(root, "test"); !errors.Is(err, ops.ErrUpstream) {
		t.Errorf("failed reload: %v, want ErrUpstream", err)
	}
	for _, o := range []ops.LockOrder{
		{Kind: "user", Name: "webhost2"},
		{Kind: "user", Name: "webhost2", Reason: "a\nb"},
		{Kind: "user", Name: "webhost2", Reason: "x", Duration: "-1h"},
		{Kind: "user", Name: "nobody", Reason: "x"},
		{Kind: "identity", Domain: "nowhere.example", Name: "x", Reason: "x"},
		{Kind: "user", Name: "webhost2", Reason: "x", Message: "not-a-log-id"},
	} {
		if _, err := e.Ops.Lock(ctx, root, o); err == nil {
			t.Errorf("lock %+v: no error", o)
		}
	}
	if n := e.AuditCount(); n != before {
		t.Errorf("%d entries written by refusals and repeats", n-before)
	}
}

// TestSignIn: a console sign-in is checked as a bearer token is, and
// every failure counts as an authentication failure.
func TestSignIn(t *testing.T) {
	e, _ := newEnv(t)
	ctx := context.Background()
	p, tok, err := e.Ops.SignIn(ctx, " "+admintest.TokOut+" ", "")
	if err != nil || p != out || tok.Name != "outtok" || tok.Scope != admintest.DomOut {
		t.Fatalf("sign-in: %+v %+v %v", p, tok, err)
	}
	if p, err := e.Ops.Authenticate(ctx, "Bearer "+admintest.TokAll, ""); err != nil || p != root {
		t.Errorf("bearer: %+v %v", p, err)
	}
	for _, s := range []string{"", "wrong", "a\r\nb", string(make([]byte, 600))} {
		if _, _, err := e.Ops.SignIn(ctx, s, ""); !errors.Is(err, ops.ErrUnauthorized) {
			t.Errorf("sign-in with %q: %v, want ErrUnauthorized", s, err)
		}
	}
	for _, h := range []string{"", "Basic x", "Bearer wrong"} {
		if _, err := e.Ops.Authenticate(ctx, h, ""); !errors.Is(err, ops.ErrUnauthorized) {
			t.Errorf("authorization %q: %v, want ErrUnauthorized", h, err)
		}
	}
	mf, err := e.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == "outguard_api_auth_failures_total" {
			if v := f.GetMetric()[0].GetCounter().GetValue(); v != 7 {
				t.Errorf("auth failures: %v, want 7", v)
			}
			return
		}
	}
	t.Error("no outguard_api_auth_failures_total")
}
