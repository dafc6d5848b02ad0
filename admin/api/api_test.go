package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/identity"
)

// routes lists one request per endpoint, with e's objects.
func (e *env) routes() []struct{ method, path string } {
	return []struct{ method, path string }{
		{"GET", "/api/v1/messages"},
		{"GET", "/api/v1/messages/" + e.SpamOut},
		{"GET", "/api/v1/messages/" + e.SpamOut + "/raw"},
		{"POST", "/api/v1/messages/" + e.SpamOut + "/release"},
		{"DELETE", "/api/v1/messages/" + e.SpamOut},
		{"GET", "/api/v1/reports?group_by=identity"},
		{"GET", "/api/v1/locks"},
		{"POST", "/api/v1/locks"},
		{"GET", "/api/v1/locks/user/webhost1"},
		{"GET", "/api/v1/locks/identity/" + domOut + "/alice@customer.example"},
		{"DELETE", "/api/v1/locks/user/webhost1"},
		{"DELETE", "/api/v1/locks/identity/" + domOut + "/alice@customer.example"},
		{"GET", "/api/v1/identities/" + domOut + "/alice@customer.example/usage"},
		{"GET", "/api/v1/would-locks"},
		{"GET", "/api/v1/feedback"},
		{"POST", "/api/v1/feedback"},
		{"POST", "/api/v1/reload"},
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/campaigns"},
		{"GET", "/api/v1/campaigns/" + campA},
		{"POST", "/api/v1/campaigns/" + campA + "/confirm"},
		{"POST", "/api/v1/campaigns/" + campA + "/unconfirm"},
		{"POST", "/api/v1/campaigns/" + campA + "/lock"},
		{"GET", "/api/v1/nonexistent"},
	}
}

func TestAPIUnauthorized(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.routes() {
		for name, header := range map[string]string{
			"no header":    "",
			"wrong token":  "Bearer not-a-token",
			"basic scheme": "Basic cm9vdDpwdw==",
			"empty bearer": "Bearer ",
		} {
			t.Run(rt.method+" "+rt.path+" "+name, func(t *testing.T) {
				req, _ := http.NewRequest(rt.method, e.srv.URL+rt.path, strings.NewReader(`{"kind":"user","name":"webhost1","reason":"x"}`))
				if header != "" {
					req.Header.Set("Authorization", header)
				}
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("got status %d, want 401", resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("got WWW-Authenticate %q, want Bearer", got)
				}
			})
		}
	}
	if e.Deliver.Count() != 0 || e.LockCount() != 0 || e.AuditCount() != 0 || e.Reloads != 0 || e.Feedback.Calls != 0 {
		t.Errorf("an unauthorized request changed something: deliveries %d locks %d audit %d reloads %d feedback %d",
			e.Deliver.Count(), e.LockCount(), e.AuditCount(), e.Reloads, e.Feedback.Calls)
	}
}

func TestAPIScopeForbidden(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Objects of other.example.org that the out.example.net token must
	// not reach: a lock on its user and identity to get and unlock.
	for _, tg := range []identity.Target{identity.UserTarget(domOther, "otheruser"), identity.IdentityTarget(domOther, "mallory@other.example")} {
		if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: tg, Reason: "setup", Actor: "root"}); err != nil {
			t.Fatal(err)
		}
	}
	audit0 := e.AuditCount()
	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"show message", "GET", "/api/v1/messages/" + e.SpamOther, nil},
		{"raw message", "GET", "/api/v1/messages/" + e.SpamOther + "/raw", nil},
		{"release", "POST", "/api/v1/messages/" + e.SpamOther + "/release", nil},
		{"delete", "DELETE", "/api/v1/messages/" + e.SpamOther, nil},
		{"lock other user", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "otheruser", Reason: "x"}},
		{"lock other user naming own domain", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Domain: domOut, Name: "otheruser", Reason: "x"}},
		{"lock other identity", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "identity", Domain: domOther, Name: "eve", Reason: "x"}},
		{"get other user lock", "GET", "/api/v1/locks/user/otheruser", nil},
		{"get other identity lock", "GET", "/api/v1/locks/identity/" + domOther + "/mallory@other.example", nil},
		{"unlock other user", "DELETE", "/api/v1/locks/user/otheruser", apiv1.UnlockRequest{Reason: "x"}},
		{"unlock other identity", "DELETE", "/api/v1/locks/identity/" + domOther + "/mallory@other.example", apiv1.UnlockRequest{Reason: "x"}},
		{"usage", "GET", "/api/v1/identities/" + domOther + "/mallory@other.example/usage", nil},
		{"feedback", "POST", "/api/v1/feedback", "From: x\r\n\r\nbody\r\n"},
		{"reload", "POST", "/api/v1/reload", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := e.Do(tc.method, tc.path, tokOut, tc.body)
			if code != http.StatusForbidden {
				t.Fatalf("got status %d (%s), want 403", code, b)
			}
			if got := errorOf(t, b); got.Code != "forbidden" {
				t.Errorf("got code %q, want forbidden", got.Code)
			}
		})
	}
	if e.Deliver.Count() != 0 || e.AuditCount() != audit0 || e.Reloads != 0 || e.Feedback.Calls != 0 {
		t.Errorf("a forbidden request changed something")
	}
	for _, tg := range []identity.Target{identity.UserTarget(domOther, "otheruser"), identity.IdentityTarget(domOther, "mallory@other.example")} {
		if l, err := e.Locks.Get(ctx, tg); err != nil || !l.Active(e.Clock.Now()) {
			t.Errorf("%s: got %v %v, want still locked", tg, l, err)
		}
	}
	if _, err := e.Store.Raw(e.SpamOther, quarantineAll); err != nil {
		t.Errorf("other domain's message content: %v, want still stored", err)
	}
}

func TestAPIScopeRestrictsLists(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tg := range []identity.Target{identity.UserTarget(domOther, "otheruser"), identity.IdentityTarget(domOut, "alice@customer.example")} {
		if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: tg, Reason: "setup", Actor: "root"}); err != nil {
			t.Fatal(err)
		}
	}
	e.record(ops.AuditTarget{Kind: "user", Domain: domOther, Name: "otheruser"}, "setup")
	e.record(ops.AuditTarget{Kind: "identity", Domain: domOut, Name: "alice@customer.example"}, "setup")

	t.Run("messages", func(t *testing.T) {
		for _, q := range []string{"", "?domain=" + domOther, "?user=otheruser"} {
			var res apiv1.SearchResponse
			e.DoJSON("GET", "/api/v1/messages"+q, tokOut, nil, &res)
			for _, m := range res.Messages {
				if m.Domain != domOut {
					t.Errorf("query %q: got a message of %s", q, m.Domain)
				}
			}
		}
		var all apiv1.SearchResponse
		e.DoJSON("GET", "/api/v1/messages", tokAll, nil, &all)
		if len(all.Messages) != 3 {
			t.Errorf("root: got %d messages, want 3", len(all.Messages))
		}
	})
	t.Run("locks", func(t *testing.T) {
		for _, q := range []string{"", "?domain=" + domOther, "?kind=user"} {
			var res apiv1.LockList
			e.DoJSON("GET", "/api/v1/locks"+q, tokOut, nil, &res)
			for _, l := range res.Locks {
				if l.Domain != domOut {
					t.Errorf("query %q: got a lock of %s", q, l.Domain)
				}
			}
		}
		var res apiv1.LockList
		e.DoJSON("GET", "/api/v1/locks", tokOut, nil, &res)
		if len(res.Locks) != 1 {
			t.Errorf("got %d locks, want 1", len(res.Locks))
		}
	})
	t.Run("reports", func(t *testing.T) {
		var res apiv1.ReportResponse
		if code := e.DoJSON("GET", "/api/v1/reports?group_by=domain", tokOut, nil, &res); code != 200 {
			t.Fatalf("got %d", code)
		}
		if len(res.Rows) != 1 || res.Rows[0].Domain != domOut {
			t.Errorf("got rows %+v, want only %s", res.Rows, domOut)
		}
		res = apiv1.ReportResponse{}
		if code := e.DoJSON("GET", "/api/v1/reports?group_by=user&domain="+domOther, tokOut, nil, &res); code != 200 || len(res.Rows) != 0 {
			t.Errorf("another domain's report: got %d %+v, want 200 and no rows", code, res.Rows)
		}
	})
	t.Run("audit", func(t *testing.T) {
		var res apiv1.AuditList
		e.DoJSON("GET", "/api/v1/audit", tokOut, nil, &res)
		if len(res.Entries) != 1 || res.Entries[0].Target.Domain != domOut {
			t.Errorf("got %+v, want only the entry of %s", res.Entries, domOut)
		}
	})
}

func TestAPISearch(t *testing.T) {
	e := newEnv(t)
	now := e.Clock.Now()
	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"all newest first", nil, []string{e.SpamOther, e.CleanOut, e.SpamOut}},
		{"status quarantined", url.Values{"status": {"quarantined"}}, []string{e.SpamOther, e.SpamOut}},
		{"status list", url.Values{"status": {"accepted,rejected"}}, []string{e.CleanOut}},
		{"verdict", url.Values{"verdict": {"phishing"}}, []string{e.SpamOther}},
		{"user", url.Values{"user": {"webhost2"}}, []string{e.CleanOut}},
		{"domain", url.Values{"domain": {domOut}}, []string{e.CleanOut, e.SpamOut}},
		{"identity", url.Values{"identity": {"alice@customer.example"}}, []string{e.SpamOut}},
		{"sender contains", url.Values{"sender": {"mallory"}}, []string{e.SpamOther}},
		{"recipient contains", url.Values{"recipient": {"bob@"}}, []string{e.SpamOther, e.CleanOut, e.SpamOut}},
		{"subject contains", url.Values{"subject": {"pill"}}, []string{e.SpamOut}},
		{"message id", url.Values{"message_id": {"<Invoice@customer.example>"}}, []string{e.CleanOut}},
		{"client ip", url.Values{"client_ip": {"192.0.2.10"}}, []string{e.SpamOther, e.CleanOut, e.SpamOut}},
		{"since", url.Values{"since": {"75m"}}, []string{e.SpamOther}},
		{"from to", url.Values{"from": {now.Add(-100 * time.Minute).Format(time.RFC3339)}, "to": {now.Add(-80 * time.Minute).Format(time.RFC3339)}}, []string{e.CleanOut}},
		{"limit", url.Values{"limit": {"1"}}, []string{e.SpamOther}},
		{"no match", url.Values{"subject": {"nothing like it"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res apiv1.SearchResponse
			if code := e.DoJSON("GET", "/api/v1/messages?"+tc.query.Encode(), tokAll, nil, &res); code != 200 {
				t.Fatalf("got status %d", code)
			}
			var got []string
			for _, m := range res.Messages {
				got = append(got, m.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("cursor", func(t *testing.T) {
		var p1, p2 apiv1.SearchResponse
		e.DoJSON("GET", "/api/v1/messages?limit=2", tokAll, nil, &p1)
		if p1.NextCursor == "" || len(p1.Messages) != 2 {
			t.Fatalf("got %d messages, cursor %q; want 2 and a cursor", len(p1.Messages), p1.NextCursor)
		}
		e.DoJSON("GET", "/api/v1/messages?limit=2&cursor="+url.QueryEscape(p1.NextCursor), tokAll, nil, &p2)
		if len(p2.Messages) != 1 || p2.Messages[0].ID != e.SpamOut || p2.NextCursor != "" {
			t.Errorf("page 2: got %+v", p2)
		}
	})
}

func TestAPIMessage(t *testing.T) {
	e := newEnv(t)
	var d apiv1.MessageDetail
	if code := e.DoJSON("GET", "/api/v1/messages/"+e.SpamOut, tokOut, nil, &d); code != 200 {
		t.Fatalf("got %d", code)
	}
	if d.Message.Verdict != "spam" || d.Message.Status != "quarantined" || len(d.Message.Reasons) != 1 || d.Content == nil {
		t.Fatalf("got %+v", d)
	}
	if !strings.Contains(d.Content.Body, "Buy now!") || len(d.Content.Header) < 4 {
		t.Errorf("got content %+v, want header and body", d.Content)
	}
	var clean apiv1.MessageDetail
	e.DoJSON("GET", "/api/v1/messages/"+e.CleanOut, tokOut, nil, &clean)
	if clean.Content != nil || clean.Message.Status != "accepted" {
		t.Errorf("accepted message: got %+v, want metadata only", clean)
	}

	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/messages/"+e.SpamOut+"/raw", nil)
	req.Header.Set("Authorization", "Bearer "+tokOut)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "message/rfc822" || resp.ContentLength != int64(len(admintest.SampleRaw)) {
		t.Errorf("raw: got %q length %d, want message/rfc822 length %d", ct, resp.ContentLength, len(admintest.SampleRaw))
	}
	for _, tc := range []struct {
		name, path string
		code       int
		errCode    string
	}{
		{"raw of accepted", "/api/v1/messages/" + e.CleanOut + "/raw", 409, "not_quarantined"},
		{"unknown id", "/api/v1/messages/01JNZZZZZZZZZZZZZZZZZZZZZZ", 404, "not_found"},
		{"malformed id", "/api/v1/messages/nope", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := e.Do("GET", tc.path, tokAll, nil)
			if code != tc.code || errorOf(t, b).Code != tc.errCode {
				t.Errorf("got %d %s, want %d %s", code, b, tc.code, tc.errCode)
			}
		})
	}
}

func TestAPIReleaseDelete(t *testing.T) {
	e := newEnv(t)
	var rel apiv1.ReleaseResponse
	if code := e.DoJSON("POST", "/api/v1/messages/"+e.SpamOut+"/release", tokOut, map[string]string{"reason": "false positive"}, &rel); code != 200 {
		t.Fatalf("release: got %d", code)
	}
	if rel.Already || rel.ReleasedBy != "outtok" || e.Deliver.Count() != 1 {
		t.Errorf("release: got %+v, deliveries %d", rel, e.Deliver.Count())
	}
	e.DoJSON("POST", "/api/v1/messages/"+e.SpamOut+"/release", tokOut, nil, &rel)
	if !rel.Already || e.Deliver.Count() != 1 {
		t.Errorf("second release: got %+v, deliveries %d; want already, 1", rel, e.Deliver.Count())
	}
	var del apiv1.DeleteResponse
	if code := e.DoJSON("DELETE", "/api/v1/messages/"+e.SpamOut, tokAll, nil, &del); code != 200 || !del.Deleted {
		t.Fatalf("delete: got %d %+v", code, del)
	}
	if code, b := e.Do("GET", "/api/v1/messages/"+e.SpamOut+"/raw", tokAll, nil); code != http.StatusGone {
		t.Errorf("raw after delete: got %d %s, want 410", code, b)
	}
	// A second delete changes nothing and says so, as a second release.
	var again apiv1.DeleteResponse
	if code := e.DoJSON("DELETE", "/api/v1/messages/"+e.SpamOut, tokAll, nil, &again); code != 200 || !again.Already || again.DeletedAt.IsZero() {
		t.Errorf("second delete: got %d %+v, want 200 already", code, again)
	}
	e.Deliver.Err = errors.New("next hop down")
	code, b := e.Do("POST", "/api/v1/messages/"+e.SpamOther+"/release", tokAll, nil)
	if code != http.StatusBadGateway || errorOf(t, b).Code != "upstream_failed" {
		t.Errorf("failed delivery: got %d %s, want 502", code, b)
	}

	var audit apiv1.AuditList
	e.DoJSON("GET", "/api/v1/audit", tokAll, nil, &audit)
	var got []string
	for _, a := range audit.Entries {
		got = append(got, a.Action+" "+a.Actor+" "+a.Target.Name+" "+a.Reason)
	}
	want := []string{"delete root " + e.SpamOut + " ", "release outtok " + e.SpamOut + " false positive"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit: got %q, want %q", got, want)
	}
}

func TestAPIReports(t *testing.T) {
	e := newEnv(t)
	if _, err := e.Locks.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget(domOut, "alice@customer.example"), Reason: "x", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"identity all", "group_by=identity", []string{"other.example.org/mallory@other.example=1", "out.example.net/alice@customer.example=1L", "out.example.net/bob@customer.example=1"}},
		{"user rejected", "group_by=user&classification=rejected", []string{"other.example.org/otheruser=1", "out.example.net/webhost1=1"}},
		{"domain spam", "group_by=domain&classification=spam", []string{"out.example.net/out.example.net=1"}},
		{"sender phishing since", "group_by=sender&classification=phishing&since=1d", []string{"other.example.org/mallory@other.example=1"}},
		{"domain filter", "group_by=user&domain=" + domOther, []string{"other.example.org/otheruser=1"}},
		{"limit", "group_by=domain&limit=1", []string{"out.example.net/out.example.net=2"}},
		{"old period", "group_by=domain&from=2020-01-01&to=2020-01-02", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res apiv1.ReportResponse
			if code := e.DoJSON("GET", "/api/v1/reports?"+tc.query, tokAll, nil, &res); code != 200 {
				t.Fatalf("got %d", code)
			}
			var got []string
			for _, r := range res.Rows {
				s := r.Domain + "/" + r.Key + "=" + itoa(r.Count)
				if r.Locked {
					s += "L"
				}
				got = append(got, s)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAPIReportKeepsLocked: every row carries "locked", false included
// (JSON output keeps every documented key).
func TestAPIReportKeepsLocked(t *testing.T) {
	e := newEnv(t)
	var rows struct {
		Rows []map[string]any `json:"rows"`
	}
	if code := e.DoJSON("GET", "/api/v1/reports?group_by=identity", tokAll, nil, &rows); code != 200 || len(rows.Rows) == 0 {
		t.Fatalf("got %d, %d rows", code, len(rows.Rows))
	}
	for _, r := range rows.Rows {
		if v, ok := r["locked"]; !ok || v != false {
			t.Errorf("row %v: locked %v (present %v), want false", r, v, ok)
		}
	}
}

func itoa(n int64) string { return strconvI(n) }

func TestAPILocks(t *testing.T) {
	e := newEnv(t)
	var l apiv1.Lock
	code := e.DoJSON("POST", "/api/v1/locks", tokOut, apiv1.LockRequest{Kind: "identity", Name: "alice@customer.example", Reason: "spam run", Duration: "2h"}, &l)
	if code != http.StatusCreated || l.Domain != domOut || l.Actor != "outtok" || l.State != "active" || !l.Expires.Equal(e.Clock.Now().Add(2*time.Hour)) {
		t.Fatalf("lock: got %d %+v", code, l)
	}
	code, b := e.Do("POST", "/api/v1/locks", tokAll, apiv1.LockRequest{Kind: "identity", Domain: domOut, Name: "Alice@Customer.example", Reason: "again"})
	if code != http.StatusConflict || errorOf(t, b).Code != "already_locked" {
		t.Errorf("second lock: got %d %s, want 409 already_locked", code, b)
	}
	l = apiv1.Lock{}
	if code := e.DoJSON("POST", "/api/v1/locks", tokAll, apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "compromised"}, &l); code != 201 || l.Domain != domOut || !l.Expires.IsZero() {
		t.Fatalf("user lock: got %d %+v", code, l)
	}
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"all", "", 2},
		{"kind user", "?kind=user", 1},
		{"domain", "?domain=" + domOther, 0},
		{"active", "?active=true", 2},
	} {
		t.Run("list "+tc.name, func(t *testing.T) {
			var res apiv1.LockList
			e.DoJSON("GET", "/api/v1/locks"+tc.query, tokAll, nil, &res)
			if len(res.Locks) != tc.want {
				t.Errorf("got %d locks, want %d", len(res.Locks), tc.want)
			}
		})
	}
	e.Clock.Advance(3 * time.Hour)
	var res apiv1.LockList
	e.DoJSON("GET", "/api/v1/locks?active=true", tokAll, nil, &res)
	if len(res.Locks) != 1 || res.Locks[0].Kind != string(identity.KindUser) {
		t.Errorf("active after expiry: got %+v, want only the user lock", res.Locks)
	}

	var u apiv1.Lock
	if code := e.DoJSON("DELETE", "/api/v1/locks/user/webhost2", tokOut, apiv1.UnlockRequest{Reason: "password changed"}, &u); code != 200 || u.State != "unlocked" || u.UnlockedBy != "outtok" {
		t.Fatalf("unlock: got %d %+v", code, u)
	}
	code, b = e.Do("DELETE", "/api/v1/locks/user/webhost2?reason=again", tokOut, nil)
	if code != http.StatusConflict || errorOf(t, b).Code != "not_locked" {
		t.Errorf("second unlock: got %d %s, want 409 not_locked", code, b)
	}
	// The message reads as a sentence, without a Go package prefix.
	if m := errorOf(t, b).Message; m != "user webhost2 (out.example.net) is not locked" {
		t.Errorf("second unlock says %q", m)
	}
	var d apiv1.LockDetail
	if code := e.DoJSON("GET", "/api/v1/locks/user/webhost2", tokOut, nil, &d); code != 200 || len(d.History) != 2 || d.History[1].Reason != "password changed" {
		t.Errorf("detail: got %d %+v", code, d)
	}
	if code := e.DoJSON("GET", "/api/v1/locks/identity/"+domOut+"/"+url.PathEscape("alice@customer.example"), tokOut, nil, &d); code != 200 || d.Lock.State != "expired" {
		t.Errorf("identity detail: got %d %+v", code, d)
	}
	if code, _ := e.Do("GET", "/api/v1/locks/user/webhost1", tokAll, nil); code != 404 {
		t.Errorf("never locked: got %d, want 404", code)
	}
	if code, _ := e.Do("GET", "/api/v1/locks/user/nobody", tokAll, nil); code != 404 {
		t.Errorf("unknown user: got %d, want 404", code)
	}
}

func TestAPILockAutomaticEvidence(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := identity.DefaultPolicy()
	for i := range 5 {
		o := identity.Observation{Domain: domOut, User: "webhost1", Identity: "spammer/with/slash", TxID: "tx" + strconvI(int64(i)), Class: identity.ClassSpam, Recipients: 1}
		if _, err := e.Locks.Observe(ctx, o, p); err != nil {
			t.Fatal(err)
		}
	}
	var d apiv1.LockDetail
	code := e.DoJSON("GET", "/api/v1/locks/identity/"+domOut+"/"+url.PathEscape("spammer/with/slash"), tokOut, nil, &d)
	if code != 200 || !d.Lock.Automatic || d.Lock.Evidence == nil || len(d.Lock.Evidence.TxIDs) != 5 || d.History[0].Evidence == nil {
		t.Fatalf("got %d %+v", code, d)
	}
}

func TestAPIUsage(t *testing.T) {
	e := newEnv(t)
	var u identity.Usage
	if code := e.DoJSON("GET", "/api/v1/identities/"+domOut+"/alice@customer.example/usage", tokOut, nil, &u); code != 200 {
		t.Fatalf("got %d", code)
	}
	if u.User != "webhost1" || len(u.Counters) != len(identity.Counters()) || u.Counters[0].Counter != "spam" || u.Counters[0].Count != 1 || u.Counters[0].Threshold != 5 {
		t.Errorf("got %+v", u)
	}
	if code, b := e.Do("GET", "/api/v1/identities/"+domOut+"/nobody/usage", tokOut, nil); code != 404 {
		t.Errorf("unknown identity: got %d %s, want 404", code, b)
	}
	if code, b := e.Do("GET", "/api/v1/identities/unknown.example/x/usage", tokAll, nil); code != 404 {
		t.Errorf("unknown domain: got %d %s, want 404", code, b)
	}
}

func TestAPIBadInput(t *testing.T) {
	e := newEnv(t)
	if _, err := e.Locks.Lock(context.Background(), identity.LockRequest{Target: identity.UserTarget(domOut, "webhost1"), Reason: "setup", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 2000)
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
		want               string
	}{
		{"lock bad json", "POST", "/api/v1/locks", `{"kind":"user",`, 400, "invalid JSON"},
		{"lock empty body", "POST", "/api/v1/locks", "", 400, "body is required"},
		{"lock unknown field", "POST", "/api/v1/locks", `{"kind":"user","name":"webhost2","reason":"x","forever":true}`, 400, "unknown field"},
		{"lock trailing data", "POST", "/api/v1/locks", `{"kind":"user","name":"webhost2","reason":"x"} {}`, 400, "after the object"},
		{"lock missing reason", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2"}, 400, "reason is required"},
		{"lock blank reason", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "  "}, 400, "reason is required"},
		{"lock long reason", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: long}, 400, "longer than"},
		{"lock multiline reason", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "a\nb"}, 400, "one line"},
		{"lock bad duration", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "x", Duration: "soon"}, 400, "duration"},
		{"lock negative duration", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "x", Duration: "-1h"}, 400, "duration"},
		{"lock zero duration", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "webhost2", Reason: "x", Duration: "0s"}, 400, "duration"},
		{"lock bad kind", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "domain", Name: "x", Reason: "x"}, 400, "kind"},
		{"lock no name", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Reason: "x"}, 400, "name is required"},
		{"lock identity no domain", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "identity", Name: "x", Reason: "x"}, 400, "domain is required"},
		{"lock user wrong domain", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Domain: domOther, Name: "webhost2", Reason: "x"}, 400, "belongs to domain"},
		{"lock unknown user", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "user", Name: "nobody", Reason: "x"}, 404, "no outgoing user"},
		{"lock unknown domain", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "identity", Domain: "nowhere.example", Name: "x", Reason: "x"}, 404, "no administrative domain"},
		{"lock control char", "POST", "/api/v1/locks", apiv1.LockRequest{Kind: "identity", Domain: domOut, Name: "a\x01b", Reason: "x"}, 400, "control character"},
		{"lock body too large", "POST", "/api/v1/locks", `{"kind":"user","name":"webhost2","reason":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "over"},
		{"unlock no reason", "DELETE", "/api/v1/locks/user/webhost1", nil, 400, "reason is required"},
		{"unlock bad json", "DELETE", "/api/v1/locks/user/webhost1", `{"reason":`, 400, "invalid JSON"},
		{"unlock unknown param", "DELETE", "/api/v1/locks/user/webhost1?why=x", nil, 400, "unknown query parameter"},
		{"search bad status", "GET", "/api/v1/messages?status=lost", nil, 400, "status"},
		{"search bad verdict", "GET", "/api/v1/messages?verdict=ham", nil, 400, "verdict"},
		{"search bad limit", "GET", "/api/v1/messages?limit=0", nil, 400, "limit"},
		{"search huge limit", "GET", "/api/v1/messages?limit=5000", nil, 400, "limit"},
		{"search bad since", "GET", "/api/v1/messages?since=yesterday", nil, 400, "since"},
		{"search since and from", "GET", "/api/v1/messages?since=1h&from=2026-01-01", nil, 400, "not both"},
		{"search bad from", "GET", "/api/v1/messages?from=March", nil, 400, "RFC 3339"},
		{"search from after to", "GET", "/api/v1/messages?from=2026-03-02&to=2026-03-01", nil, 400, "before"},
		{"search bad ip", "GET", "/api/v1/messages?client_ip=999.1.1.1", nil, 400, "client_ip"},
		{"search bad cursor", "GET", "/api/v1/messages?cursor=!!", nil, 400, "cursor"},
		{"search unknown param", "GET", "/api/v1/messages?colour=red", nil, 400, "unknown query parameter"},
		{"search long param", "GET", "/api/v1/messages?subject=" + long, nil, 400, "longer than"},
		{"report no group", "GET", "/api/v1/reports", nil, 400, "group_by is required"},
		{"report bad group", "GET", "/api/v1/reports?group_by=recipient", nil, 400, "group_by"},
		{"report bad class", "GET", "/api/v1/reports?group_by=user&classification=ham", nil, 400, "classification"},
		{"report clean by user", "GET", "/api/v1/reports?group_by=user&classification=clean", nil, 400, "clean"},
		{"locks bad kind", "GET", "/api/v1/locks?kind=domain", nil, 400, "kind"},
		{"locks bad active", "GET", "/api/v1/locks?active=maybe", nil, 400, "active"},
		{"release bad json", "POST", "/api/v1/messages/" + e.SpamOut + "/release", `{"reason":1}`, 400, "invalid JSON"},
		{"delete bad json", "DELETE", "/api/v1/messages/" + e.SpamOut, `[`, 400, "invalid JSON"},
		{"audit bad cursor", "GET", "/api/v1/audit?cursor=x", nil, 400, "cursor"},
		{"feedback empty", "POST", "/api/v1/feedback", "", 400, "feedback report"},
		{"feedback too large", "POST", "/api/v1/feedback", strings.Repeat("x", 65<<10), 413, "over"},
		{"reload with params", "POST", "/api/v1/reload?now=1", nil, 400, "takes none"},
		{"no such endpoint", "GET", "/api/v1/nothing", nil, 404, "no endpoint"},
		{"wrong method", "PUT", "/api/v1/locks", nil, 405, "use GET or POST"},
		{"wrong method on a message", "POST", "/api/v1/messages/" + e.SpamOut, nil, 405, "use GET or DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := e.Do(tc.method, tc.path, tokAll, tc.body)
			if code != tc.code {
				t.Fatalf("got status %d (%s), want %d", code, b, tc.code)
			}
			if got := errorOf(t, b); !strings.Contains(got.Message, tc.want) {
				t.Errorf("got message %q, want it to mention %q", got.Message, tc.want)
			}
		})
	}
	if n := e.LockCount(); n != 1 {
		t.Errorf("got %d locks, want only the setup one", n)
	}
	if l, err := e.Locks.Get(context.Background(), identity.UserTarget(domOut, "webhost1")); err != nil || !l.Active(e.Clock.Now()) {
		t.Errorf("webhost1: got %+v %v, want still locked", l, err)
	}
	if e.AuditCount() != 0 || e.Deliver.Count() != 0 || e.Feedback.Calls != 0 || e.Reloads != 0 {
		t.Errorf("a bad request changed something: audit %d deliveries %d feedback %d reloads %d", e.AuditCount(), e.Deliver.Count(), e.Feedback.Calls, e.Reloads)
	}
	if _, err := e.Store.Raw(e.SpamOut, quarantineAll); err != nil {
		t.Errorf("content after bad delete: %v", err)
	}
}

func TestAPIFeedback(t *testing.T) {
	e := newEnv(t)
	e.Feedback.Res = feedback.Result{Parse: arf.Result{OK: true, FeedbackType: "abuse", Warnings: []string{}}, Method: "message-id",
		TxID: e.SpamOut, User: "webhost1", Domain: domOut, Identity: "alice@customer.example", Counted: true}
	var res apiv1.FeedbackResult
	code := e.DoJSON("POST", "/api/v1/feedback?source=report1.eml", tokAll, "raw report", &res)
	if code != 200 || !res.OK || res.File != "report1.eml" || res.TxID != e.SpamOut || !res.Counted {
		t.Fatalf("got %d %+v", code, res)
	}
	if string(e.Feedback.Raw) != "raw report" {
		t.Errorf("ingester got %q", e.Feedback.Raw)
	}
	e.Feedback.Res = feedback.Result{Parse: arf.Result{Error: "not-arf", Detail: "arf: not a multipart/report"}}
	code, b := e.Do("POST", "/api/v1/feedback", tokAll, "From: x\r\n\r\nhello\r\n")
	if code != http.StatusUnprocessableEntity || errorOf(t, b).Code != "not-arf" || !strings.Contains(string(b), `"result"`) {
		t.Errorf("not a report: got %d %s", code, b)
	}
	e.Feedback.Err = errors.New("disk full")
	code, b = e.Do("POST", "/api/v1/feedback", tokAll, "x")
	if code != 500 || strings.Contains(string(b), "disk full") {
		t.Errorf("ingest error: got %d %s, want 500 without internals", code, b)
	}
	var audit apiv1.AuditList
	e.DoJSON("GET", "/api/v1/audit?action=feedback", tokAll, nil, &audit)
	if len(audit.Entries) != 1 || audit.Entries[0].Target.Name != "report1.eml" {
		t.Errorf("audit: got %+v", audit.Entries)
	}
}

func TestAPIReload(t *testing.T) {
	e := newEnv(t)
	var ok apiv1.ReloadResponse
	if code := e.DoJSON("POST", "/api/v1/reload", tokAll, nil, &ok); code != 200 || !ok.Reloaded || e.Reloads != 1 {
		t.Fatalf("got %d %+v reloads %d", code, ok, e.Reloads)
	}
	e.ReloadErr = errors.New("line 3: unknown key")
	code, b := e.Do("POST", "/api/v1/reload", tokAll, nil)
	if code != http.StatusBadGateway || !strings.Contains(errorOf(t, b).Message, "line 3") {
		t.Errorf("failed reload: got %d %s", code, b)
	}
}

func TestAPISetTokens(t *testing.T) {
	e := newEnv(t)
	h := admintest.Hashes()
	// Use both tokens first, so that they are cached as recognised.
	for _, tok := range []string{tokAll, tokOther} {
		if code, _ := e.Do("GET", "/api/v1/locks", tok, nil); code != 200 {
			t.Fatalf("before: got %d", code)
		}
	}
	if err := e.Ops.SetTokens([]ops.Token{{Name: "new", Hash: h[2], Scope: ops.ScopeAll}}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.Do("GET", "/api/v1/locks", tokAll, nil); code != 401 {
		t.Errorf("removed token: got %d, want 401", code)
	}
	if code, _ := e.Do("GET", "/api/v1/locks", tokOther, nil); code != 200 {
		t.Errorf("new token: got %d, want 200", code)
	}
	var res apiv1.SearchResponse
	e.DoJSON("GET", "/api/v1/messages", tokOther, nil, &res)
	if len(res.Messages) != 3 {
		t.Errorf("a token whose scope became all: got %d messages, want 3", len(res.Messages))
	}
	if err := e.Ops.SetTokens([]ops.Token{{Name: "noscope", Hash: h[0]}}); err == nil {
		t.Error("token without scope: got nil error")
	}
	if code, _ := e.Do("GET", "/api/v1/locks", tokOther, nil); code != 200 {
		t.Errorf("after a refused SetTokens: got %d, want the old set kept", code)
	}
}

func TestAPIAuditPaging(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.record(ops.AuditTarget{Kind: "user", Domain: domOut, Name: "u" + strconvI(int64(i))}, "r")
	}
	var p1, p2 apiv1.AuditList
	e.DoJSON("GET", "/api/v1/audit?limit=3", tokAll, nil, &p1)
	if len(p1.Entries) != 3 || p1.NextCursor == "" || p1.Entries[0].Target.Name != "u4" {
		t.Fatalf("page 1: got %+v", p1)
	}
	e.DoJSON("GET", "/api/v1/audit?limit=3&cursor="+p1.NextCursor, tokAll, nil, &p2)
	if len(p2.Entries) != 2 || p2.Entries[1].Target.Name != "u0" {
		t.Errorf("page 2: got %+v", p2)
	}
}

func TestAPIFeedbackList(t *testing.T) {
	e := newEnv(t)
	ok := arf.Result{OK: true}
	e.Feedback.List = []feedback.Result{
		{ID: "B", Parse: ok, Domain: domOut, Identity: "innocent1", Method: "identity-header", NotCounted: "unlisted-reporter"},
		{ID: "A", Parse: ok, Domain: domOther, Identity: "bob", Method: "message-id", Counted: true, Reporter: "fbl"},
		{ID: "0", Parse: ok, Method: "none", NotCounted: "not-attributed"},
	}
	var all apiv1.FeedbackList
	if code := e.DoJSON("GET", "/api/v1/feedback?limit=10&counted=false&cursor=C", tokAll, nil, &all); code != 200 || len(all.Reports) != 3 {
		t.Fatalf("scope all: got %d %+v, want the 3 reports", code, all)
	}
	if q := e.Feedback.Query; q.Limit != 10 || q.Before != "C" || q.Counted == nil || *q.Counted || q.Domain != "" {
		t.Errorf("query: got %+v, want limit 10, before C, counted false, no domain", q)
	}
	var dom apiv1.FeedbackList
	if code := e.DoJSON("GET", "/api/v1/feedback?domain="+domOther, tokOut, nil, &dom); code != 200 || len(dom.Reports) != 0 {
		t.Errorf("a domain token naming another domain: got %d %+v, want none", code, dom)
	}
	if code := e.DoJSON("GET", "/api/v1/feedback", tokOut, nil, &dom); code != 200 || len(dom.Reports) != 1 || dom.Reports[0].ID != "B" {
		t.Errorf("a domain token: got %d %+v, want only its domain's report", code, dom)
	}
	if code, b := e.Do("GET", "/api/v1/feedback?counted=maybe", tokAll, ""); code != 400 || !strings.Contains(string(b), "counted") {
		t.Errorf("counted=maybe: got %d %s, want 400", code, b)
	}
}

// TestAPIReleaseReasonAndLearn: the release's reason goes in the audit
// entry; "learn": false releases without teaching the content model, and
// without the field the release teaches it as before; a reason of two
// lines is refused and delivers nothing.
func TestAPIReleaseReasonAndLearn(t *testing.T) {
	teacher := &admintest.Teacher{}
	e := newEnvWith(t, func(env *admintest.Env) {
		teacher.Store = env.Store
		env.Opts.Teacher = teacher
	})
	code, b := e.Do("POST", "/api/v1/messages/"+e.SpamOut+"/release", tokOut, map[string]any{"reason": "a\nb"})
	if code != http.StatusBadRequest || e.Deliver.Count() != 0 {
		t.Fatalf("two-line reason: got %d %s, %d deliveries; want 400 and none", code, b, e.Deliver.Count())
	}
	var rel apiv1.ReleaseResponse
	if code := e.DoJSON("POST", "/api/v1/messages/"+e.SpamOut+"/release", tokOut, map[string]any{"reason": "one-off", "learn": false}, &rel); code != 200 {
		t.Fatalf("release: got %d", code)
	}
	if rel.Learned != nil || len(teacher.Taught()) != 0 || e.Deliver.Count() != 1 {
		t.Errorf("learn false: got %+v, lessons %+v; want delivered, nothing taught", rel, teacher.Taught())
	}
	if code := e.DoJSON("POST", "/api/v1/messages/"+e.SpamOther+"/release", tokAll, map[string]any{"reason": "wanted"}, &rel); code != 200 {
		t.Fatalf("second message: got %d", code)
	}
	if rel.Learned == nil || len(teacher.Taught()) != 1 || teacher.Taught()[0].Spam {
		t.Errorf("learn absent: got %+v, lessons %+v; want the message learnt as ham", rel, teacher.Taught())
	}
	var audit apiv1.AuditList
	e.DoJSON("GET", "/api/v1/audit?action=release", tokAll, nil, &audit)
	var got []string
	for _, a := range audit.Entries {
		got = append(got, a.Target.Name+" "+a.Reason+" "+a.Detail)
	}
	want := []string{e.SpamOther + " wanted and learn as ham", e.SpamOut + " one-off "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit: got %q, want %q", got, want)
	}
}
