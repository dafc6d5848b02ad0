package api

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// The conversions from domain types to wire types: each test fills every
// field of the domain value and checks that every field of the wire
// value is set, so that a field added on either side and not converted
// fails here; the enumerations are checked value by value.

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

// allSet fails for every zero field of v, recursively through structs,
// pointers and the elements of slices and maps (which must not be empty).
func allSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil", path)
			return
		}
		allSet(t, path, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if v.Interface().(time.Time).IsZero() {
				t.Errorf("%s is zero", path)
			}
			return
		}
		for i := range v.NumField() {
			allSet(t, path+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Slice, reflect.Map:
		if v.Len() == 0 {
			t.Errorf("%s is empty", path)
			return
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				allSet(t, path+"[]", v.Index(i))
			}
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero", path)
		}
	}
}

func evidence() *identity.Evidence {
	return &identity.Evidence{User: "webhost1", Counter: "spam", Count: 5, Threshold: 5, Window: time.Hour,
		TxIDs: []string{"01JA"}, Counts: map[string]int{"spam": 5}, At: t0}
}

func fullLock() identity.Lock {
	return identity.Lock{Target: identity.IdentityTarget("out.example.net", "alice@customer.example"), Reason: "spam run",
		Actor: "auto", Automatic: true, Escalated: true, Start: t0, Expires: t2, Evidence: evidence(),
		Unlocked: t1, UnlockedBy: "root", UnlockReason: "cleaned"}
}

func TestMessageOf(t *testing.T) {
	r := &quarantine.Record{ID: "01JA", Time: t0.In(time.FixedZone("x", 3600)), Listener: "submission",
		ClientIP: netip.MustParseAddr("192.0.2.1"), ClientPort: 4000, User: "webhost1", Domain: "out.example.net",
		Identity: "alice@customer.example", Sender: "alice@customer.example",
		Recipients: []quarantine.Recipient{{Address: "bob@example.org", Code: 550, Text: "5.7.1 no", Refused: true}},
		HeaderFrom: "Alice <alice@customer.example>", Subject: "pills", MessageID: "<m@x>", Size: 100,
		Status: quarantine.StatusQuarantined, Verdict: quarantine.VerdictSpam, Score: 9.5, Reasons: []string{"builtin:X"},
		Band: quarantine.BandSpam, Model: "seed+1", Learned: "spam", Partial: []string{"max_depth"}, Campaign: "01KB",
		NextHopReply: "550 no", Duration: 1500 * time.Millisecond, Complaints: 2,
		Quarantine: &quarantine.QuarantineInfo{RawSize: 100, StoredSize: 50, ReleasedAt: t1, ReleasedBy: "root", ReleaseReason: "ok", ReleaseLearn: true, DeletedAt: t2, DeletedBy: "root", Expired: true}}
	m := MessageOf(r)
	// HasContent is false for deleted content: check it on its own.
	q := *m.Quarantine
	q.HasContent = true
	m.Quarantine = &q
	allSet(t, "Message", reflect.ValueOf(m))
	if !m.Time.Equal(t0) || m.Time.Location() != time.UTC || m.ClientIP != "192.0.2.1" || m.DurationMS != 1500 ||
		m.Status != "quarantined" || m.Verdict != "spam" || m.Band != "spam" || m.PartiallyScanned[0] != "max_depth" {
		t.Errorf("got %+v", m)
	}
	r.Quarantine = &quarantine.QuarantineInfo{RawSize: 1}
	if !MessageOf(r).Quarantine.HasContent {
		t.Error("stored content not shown as has_content")
	}

	// Every status, verdict and band has its documented name.
	for s, want := range map[quarantine.Status]string{quarantine.StatusAccepted: "accepted", quarantine.StatusQuarantined: "quarantined",
		quarantine.StatusRejected: "rejected", quarantine.StatusDeferred: "deferred", quarantine.StatusFailed: "failed"} {
		if got := MessageOf(&quarantine.Record{Status: s}).Status; got != want {
			t.Errorf("status %d: %q, want %q", s, got, want)
		}
	}
	for v, want := range map[quarantine.Verdict]string{quarantine.VerdictNone: "none", quarantine.VerdictClean: "clean",
		quarantine.VerdictSpam: "spam", quarantine.VerdictPhishing: "phishing", quarantine.VerdictVirus: "virus"} {
		if got := MessageOf(&quarantine.Record{Verdict: v}).Verdict; got != want {
			t.Errorf("verdict %d: %q, want %q", v, got, want)
		}
	}
	for b, want := range map[quarantine.Band]string{quarantine.BandClean: "clean", quarantine.BandSuspect: "suspect", quarantine.BandSpam: "spam"} {
		if got := MessageOf(&quarantine.Record{Band: b}).Band; got != want {
			t.Errorf("band %d: %q, want %q", b, got, want)
		}
	}
	// Empty lists are [], never null; no partial scan is absent.
	empty := MessageOf(&quarantine.Record{})
	if empty.Recipients == nil || empty.Reasons == nil || empty.PartiallyScanned != nil || empty.Quarantine != nil {
		t.Errorf("empty record: got %+v", empty)
	}
}

func TestContentOf(t *testing.T) {
	v := &quarantine.View{Header: []quarantine.HeaderField{{Name: "Subject", Value: "pills"}}, Body: "buy", BodyType: "text/plain",
		Truncated: true, Parts: []quarantine.Part{{Type: "text/plain", Filename: "a.txt", Size: 3}}}
	allSet(t, "Content", reflect.ValueOf(ContentOf(v)))
	if e := ContentOf(&quarantine.View{}); e.Header == nil || e.Parts == nil {
		t.Errorf("empty view: %+v", e)
	}
}

func TestLockOf(t *testing.T) {
	l := fullLock()
	allSet(t, "Lock", reflect.ValueOf(LockOf(l, t0)))
	// Every state: active before its end, expired after, unlocked.
	l.Unlocked, l.UnlockedBy, l.UnlockReason = time.Time{}, "", ""
	for now, want := range map[time.Time]string{t1: "active", t2.Add(time.Second): "expired"} {
		if got := LockOf(l, now).State; got != want {
			t.Errorf("state at %v: %q, want %q", now, got, want)
		}
	}
	l.Unlocked = t1
	if got := LockOf(l, t1.Add(time.Second)).State; got != "unlocked" {
		t.Errorf("state after unlock: %q", got)
	}
	if got := LockOf(identity.Lock{Target: identity.UserTarget("d", "u")}, t0).Kind; got != "user" {
		t.Errorf("user kind: %q", got)
	}
}

func TestHistoryOf(t *testing.T) {
	if h := HistoryOf(nil); h == nil || len(h) != 0 {
		t.Errorf("nil history: %#v, want []", h)
	}
	for _, a := range []identity.Action{identity.ActionLock, identity.ActionUnlock, identity.ActionExpire} {
		h := HistoryOf([]identity.HistoryEntry{{Action: a, At: t0, Actor: "root", Reason: "r", Automatic: true, Expires: t1, Evidence: evidence()}})
		allSet(t, "HistoryEntry", reflect.ValueOf(h))
		if h[0].Action != string(a) {
			t.Errorf("action %q: got %q", a, h[0].Action)
		}
	}
}

func TestUsageOf(t *testing.T) {
	l := fullLock()
	u := identity.Usage{Domain: "out.example.net", Identity: "alice@customer.example", User: "webhost1", LastSeen: t0,
		Counters: []identity.CounterUsage{{Counter: "spam", Count: 1, Threshold: 5, Window: time.Hour}}, Lock: &l}
	allSet(t, "Usage", reflect.ValueOf(UsageOf(u)))
	if got := UsageOf(identity.Usage{}); got.Counters == nil || got.Lock != nil {
		t.Errorf("empty usage: %+v", got)
	}
}

func TestWouldLockOf(t *testing.T) {
	w := identity.WouldLock{ID: 7, Target: identity.IdentityTarget("d", "i"), At: t0, Evidence: *evidence()}
	allSet(t, "WouldLock", reflect.ValueOf(WouldLockOf(w)))
}

func TestFeedbackResultOf(t *testing.T) {
	parse := arf.Result{File: "smtp:192.0.2.1", OK: true, Error: "x", Detail: "d", Warnings: []string{"w"}, Profile: "arf",
		FeedbackType: "abuse", Version: "1", UserAgent: "fbl/1", OriginalMailFrom: "a@b", OriginalRcptTo: []string{"c@d"},
		ArrivalDate: "2026-03-01T12:00:00Z", SourceIP: "192.0.2.1", SourcePort: 25, ReportedDomain: []string{"b"},
		ReportedURI: []string{"http://b/"}, Incidents: 1, MessageID: "<m@b>", Identity: "header-identity"}
	in := feedback.Result{ID: "01JZ", Source: "smtp:192.0.2.1", Parse: parse, Received: t0, Reporter: "mailbox",
		Method: "message-id", TxID: "01JA", Domain: "out.example.net", User: "web7", Identity: "alice@customer.example",
		Counted: true, NotCounted: "duplicate", Duplicate: true, DuplicateOf: "01JY", Locked: true, Learned: true,
		Digest: "d/00", DedupKey: "k/x"}
	got := FeedbackResultOf(in)
	allSet(t, "FeedbackResult", reflect.ValueOf(got))
	if got.Identity != "alice@customer.example" || got.Attribution != "message-id" || !got.Attributed {
		t.Errorf("got %+v", got)
	}
	in.Method = string(arf.MethodNone)
	if FeedbackResultOf(in).Attributed {
		t.Error("attribution none shown as attributed")
	}
	// A refused report shows only its parse result.
	refused := feedback.Result{Source: "upload", Method: "none", TxID: "01JA", Domain: "d", Locked: true,
		Parse: arf.Result{File: "upload", Error: "not-arf", Detail: "no report part", Warnings: []string{}}}
	want := apiv1.FeedbackResult{File: "upload", Error: "not-arf", Detail: "no report part", Warnings: []string{}}
	if got := FeedbackResultOf(refused); !reflect.DeepEqual(got, want) {
		t.Errorf("refused report: got %+v, want only the parse result", got)
	}
}

func TestModelOf(t *testing.T) {
	r := ops.LearnResult{ID: "01JA", As: "spam", Before: 1, After: 5, Version: "seed+1"}
	allSet(t, "LearnResult", reflect.ValueOf(LearnResultOf(r)))
	m := ops.ModelInfo{Overlay: content.OverlayInfo{Seed: "seed", Version: "seed+1", Updates: 1, Learned: 2, Features: 3, MaxFeatures: 4},
		SeedFeatures: 5, Trained: "corpus", SpamThreshold: 6, SuspectThreshold: 3}
	allSet(t, "ModelInfo", reflect.ValueOf(ModelInfoOf(m)))
	rel := ops.Released{ReleaseResult: quarantine.ReleaseResult{At: t0, By: "root", Reason: "ok", Already: true}, ID: "01JA", Learned: &r}
	allSet(t, "ReleaseResponse", reflect.ValueOf(ReleaseOf(rel)))
	allSet(t, "DeleteResponse", reflect.ValueOf(DeleteOf(ops.Deleted{ID: "01JA", Already: true, At: t0, By: "root"})))
	row := ops.ReportRow{ReportRow: quarantine.ReportRow{Domain: "d", Key: "k", Count: 3}, Kind: identity.KindUser, Locked: true}
	allSet(t, "ReportRow", reflect.ValueOf(ReportRowOf(row)))
}

func TestCampaignOf(t *testing.T) {
	c := ops.Campaign{ID: "01KB", FirstSeen: t0, LastSeen: t1, Messages: 1, Recipients: 2, Blocked: 3, Identities: 4, Users: 5,
		Verdicts: ops.CampaignVerdicts{Clean: 1, Suspect: 2, Spam: 3}, Confirmed: true, ConfirmedBy: "root", ConfirmedAt: t2, SampleTx: "01JA"}
	allSet(t, "Campaign", reflect.ValueOf(CampaignOf(c)))
	d := ops.CampaignDetail{Campaign: c, HiddenIdentities: 1, Members: []ops.CampaignMember{{Domain: "d", Identity: "i", User: "u",
		Messages: 1, Recipients: 2, LastSeen: t0, LastTx: "01JA", Locked: true}}}
	allSet(t, "CampaignDetail", reflect.ValueOf(CampaignDetailOf(d)))
	r := ops.CampaignLockResult{Campaign: "01KB", Locked: []identity.Lock{fullLock()},
		Skipped: []ops.CampaignSkip{{Domain: "d", Identity: "i", Reason: "already_locked"}}, SkippedOtherDomains: 2}
	allSet(t, "CampaignLockResult", reflect.ValueOf(CampaignLockResultOf(r, t0)))
	if e := CampaignLockResultOf(ops.CampaignLockResult{}, t0); e.Locked == nil || e.Skipped == nil {
		t.Errorf("empty lock result: %+v", e)
	}
}

func TestAuditEntryOf(t *testing.T) {
	e := ops.AuditEntry{ID: 1, At: t0, Actor: "root", Scope: "all", Action: ops.AuditLock,
		Target: ops.AuditTarget{Kind: "user", Domain: "d", Name: "u"}, Reason: "r", Detail: "permanent", Node: "mx1"}
	allSet(t, "AuditEntry", reflect.ValueOf(AuditEntryOf(e)))
}

// TestWireTypesStandAlone: no wire type embeds or holds a type of
// another package than time, so that a domain type's change cannot reach
// the API's JSON.
func TestWireTypesStandAlone(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(ty.Elem(), path)
			return
		case reflect.Struct:
			if ty.PkgPath() == "time" {
				return
			}
			if !strings.HasSuffix(ty.PkgPath(), "/admin/apiv1") {
				t.Errorf("%s: type %s of package %s in a wire type", path, ty, ty.PkgPath())
			}
			for i := range ty.NumField() {
				walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
			return
		}
		if ty.PkgPath() != "" && ty.PkgPath() != "time" && !strings.HasSuffix(ty.PkgPath(), "/admin/apiv1") {
			t.Errorf("%s: type %s of package %s in a wire type", path, ty, ty.PkgPath())
		}
	}
	for _, v := range []any{apiv1.ErrorBody{}, apiv1.SearchResponse{}, apiv1.MessageDetail{}, apiv1.ActionRequest{},
		apiv1.ReleaseResponse{}, apiv1.DeleteResponse{}, apiv1.ReportResponse{}, apiv1.LockDetail{}, apiv1.LockList{},
		apiv1.LockRequest{}, apiv1.UnlockRequest{}, apiv1.Usage{}, apiv1.WouldLockList{}, apiv1.FeedbackError{},
		apiv1.FeedbackList{}, apiv1.ReloadResponse{}, apiv1.AuditList{}, apiv1.LearnRequest{}, apiv1.ModelInfo{},
		apiv1.CampaignList{}, apiv1.CampaignDetail{}, apiv1.CampaignLockRequest{}, apiv1.CampaignLockResult{}} {
		walk(reflect.TypeOf(v), reflect.TypeOf(v).Name())
	}
}
