package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

const (
	campA = admintest.CampA
	campB = admintest.CampB
	campC = admintest.CampC
)

// newCampaignEnv is newEnv with the fake campaigns.
func newCampaignEnv(t *testing.T) (*env, *admintest.Campaigns) {
	var f *admintest.Campaigns
	e := newEnvWith(t, func(e *admintest.Env) {
		f = admintest.NewCampaigns(e)
		e.Opts.Campaigns = f
	})
	return e, f
}

func TestAPICampaignsOff(t *testing.T) {
	e := newEnv(t)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/v1/campaigns"},
		{"GET", "/api/v1/campaigns/" + campA},
		{"POST", "/api/v1/campaigns/" + campA + "/confirm"},
		{"POST", "/api/v1/campaigns/" + campA + "/unconfirm"},
		{"POST", "/api/v1/campaigns/" + campA + "/lock"},
	} {
		var body any
		if strings.HasSuffix(rt.path, "/lock") {
			body = apiv1.CampaignLockRequest{Reason: "botnet"}
		}
		code, b := e.Do(rt.method, rt.path, tokAll, body)
		if code != http.StatusNotImplemented || errorOf(t, b).Code != "not_available" {
			t.Errorf("%s %s: got %d %s, want 501 not_available", rt.method, rt.path, code, b)
		}
	}
}

func TestAPICampaignList(t *testing.T) {
	e, _ := newCampaignEnv(t)
	var l apiv1.CampaignList
	if code := e.DoJSON("GET", "/api/v1/campaigns", tokAll, nil, &l); code != http.StatusOK || len(l.Campaigns) != 3 ||
		l.Campaigns[0].ID != campA || l.Campaigns[2].ID != campC || l.Next != "" {
		t.Fatalf("got %d %+v, want the three campaigns newest first", code, l)
	}
	c := l.Campaigns[0]
	if c.Identities != 4 || c.Users != 4 || c.Messages != 40 || c.Verdicts.Spam != 35 || c.SampleTx != e.SpamOut {
		t.Errorf("got %+v", c)
	}
	// Paging: two per page, the cursor continues.
	if code := e.DoJSON("GET", "/api/v1/campaigns?limit=2", tokAll, nil, &l); code != http.StatusOK || len(l.Campaigns) != 2 || l.Next == "" {
		t.Fatalf("page 1: got %d %+v", code, l)
	}
	var p2 apiv1.CampaignList
	if code := e.DoJSON("GET", "/api/v1/campaigns?limit=2&before="+l.Next, tokAll, nil, &p2); code != http.StatusOK || len(p2.Campaigns) != 1 || p2.Campaigns[0].ID != campC {
		t.Fatalf("page 2: got %d %+v", code, p2)
	}
	if code := e.DoJSON("GET", "/api/v1/campaigns?min_identities=3", tokAll, nil, &l); code != http.StatusOK || len(l.Campaigns) != 1 || l.Campaigns[0].ID != campA {
		t.Errorf("min_identities: got %d %+v", code, l)
	}
	// A domain-scoped token lists the campaigns with an identity of its
	// domain only.
	if code := e.DoJSON("GET", "/api/v1/campaigns", tokOut, nil, &l); code != http.StatusOK || len(l.Campaigns) != 2 || l.Campaigns[0].ID != campA || l.Campaigns[1].ID != campB {
		t.Errorf("scoped: got %d %+v, want campA and campB", code, l)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "since=yesterday", "before=x", "min_users=-1", "confirmed=maybe", "colour=red"} {
		code, b := e.Do("GET", "/api/v1/campaigns?"+bad, tokAll, nil)
		if code != http.StatusBadRequest || errorOf(t, b).Code != "bad_parameter" {
			t.Errorf("%s: got %d %s, want 400 bad_parameter", bad, code, b)
		}
	}
}

func TestAPICampaignDetail(t *testing.T) {
	e, _ := newCampaignEnv(t)
	if _, err := e.Locks.Lock(context.Background(), identity.LockRequest{Target: identity.IdentityTarget(domOut, "carol@customer.example"), Reason: "earlier", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	var d apiv1.CampaignDetail
	if code := e.DoJSON("GET", "/api/v1/campaigns/"+campA, tokAll, nil, &d); code != http.StatusOK || len(d.Members) != 4 || d.HiddenIdentities != 0 {
		t.Fatalf("got %d %+v", code, d)
	}
	locked := map[string]bool{}
	for _, m := range d.Members {
		locked[m.Identity] = m.Locked
	}
	if !locked["carol@customer.example"] || locked["alice@customer.example"] {
		t.Errorf("got locked %v, want carol only", locked)
	}
	// The out.example.net token sees its two identities; the others are
	// counted, not named.
	code, b := e.Do("GET", "/api/v1/campaigns/"+campA, tokOut, nil)
	if code != http.StatusOK || strings.Contains(string(b), "mallory") || strings.Contains(string(b), "gone.example") {
		t.Fatalf("scoped: got %d %s", code, b)
	}
	if code := e.DoJSON("GET", "/api/v1/campaigns/"+campA, tokOut, nil, &d); code != http.StatusOK || len(d.Members) != 2 || d.HiddenIdentities != 2 {
		t.Errorf("scoped: got %+v, want 2 identities and 2 hidden", d)
	}
	for _, path := range []string{"/api/v1/campaigns/" + campC, "/api/v1/campaigns/" + campC + "/lock"} {
		method, body := "GET", any(nil)
		if strings.HasSuffix(path, "/lock") {
			method, body = "POST", apiv1.CampaignLockRequest{Reason: "x"}
		}
		if code, b := e.Do(method, path, tokOut, body); code != http.StatusForbidden || errorOf(t, b).Code != "forbidden" {
			t.Errorf("scoped %s %s (no identity of its domain): got %d %s, want 403", method, path, code, b)
		}
	}
	for _, id := range []string{"01KB2X7ZQ0ZZZZZZ", strings.Repeat("A", 65)} {
		code, b := e.Do("GET", "/api/v1/campaigns/"+id, tokAll, nil)
		if code != http.StatusNotFound || errorOf(t, b).Code != "not_found" {
			t.Errorf("%s: got %d %s, want 404", id, code, b)
		}
	}
}

func TestAPICampaignConfirm(t *testing.T) {
	e, f := newCampaignEnv(t)
	var c apiv1.Campaign
	if code := e.DoJSON("POST", "/api/v1/campaigns/"+campB+"/confirm", tokAll, nil, &c); code != http.StatusOK || !c.Confirmed || c.ConfirmedBy != "root" {
		t.Fatalf("confirm: got %d %+v", code, c)
	}
	var l apiv1.CampaignList
	if e.DoJSON("GET", "/api/v1/campaigns?confirmed=true", tokAll, nil, &l); len(l.Campaigns) != 1 || l.Campaigns[0].ID != campB {
		t.Errorf("confirmed filter: got %+v", l)
	}
	// Confirming blocks copies from every domain: a scoped token may not.
	code, b := e.Do("POST", "/api/v1/campaigns/"+campB+"/unconfirm", tokOut, nil)
	if code != http.StatusForbidden || errorOf(t, b).Code != "forbidden" || !f.Confirmed(campB) {
		t.Errorf("scoped unconfirm: got %d %s, want 403 and still confirmed", code, b)
	}
	if code := e.DoJSON("POST", "/api/v1/campaigns/"+campB+"/unconfirm", tokAll, nil, &c); code != http.StatusOK || c.Confirmed {
		t.Errorf("unconfirm: got %d %+v", code, c)
	}
	if code, b := e.Do("POST", "/api/v1/campaigns/01KB2X7ZQ0ZZZZZZ/confirm", tokAll, nil); code != http.StatusNotFound {
		t.Errorf("unknown: got %d %s, want 404", code, b)
	}
	if code, _ := e.Do("POST", "/api/v1/campaigns/"+campB+"/confirm?x=1", tokAll, nil); code != http.StatusBadRequest {
		t.Errorf("unknown parameter: got %d, want 400", code)
	}
	entries := e.AuditEntries(ops.AuditFilter{})
	if len(entries) != 2 || entries[0].Action != ops.AuditUnconfirm || entries[1].Action != ops.AuditConfirm ||
		entries[1].Target.Kind != "campaign" || entries[1].Target.Name != campB || entries[1].Actor != "root" {
		t.Errorf("got audit %+v, want confirm then unconfirm of campB by root", entries)
	}
}

func TestAPICampaignLock(t *testing.T) {
	e, _ := newCampaignEnv(t)
	ctx := context.Background()
	if _, err := e.Locks.Lock(ctx, identity.LockRequest{Target: identity.IdentityTarget(domOut, "carol@customer.example"), Reason: "earlier", Actor: "root"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body any
		code int
	}{
		{"no body", nil, http.StatusBadRequest},
		{"no reason", apiv1.CampaignLockRequest{Duration: "1h"}, http.StatusBadRequest},
		{"bad duration", apiv1.CampaignLockRequest{Reason: "x", Duration: "soon"}, http.StatusBadRequest},
		{"two-line reason", apiv1.CampaignLockRequest{Reason: "a\nb"}, http.StatusBadRequest},
		{"unknown field", `{"reason":"x","kind":"user"}`, http.StatusBadRequest},
	} {
		if code, b := e.Do("POST", "/api/v1/campaigns/"+campA+"/lock", tokAll, tc.body); code != tc.code {
			t.Errorf("%s: got %d %s, want %d", tc.name, code, b, tc.code)
		}
	}
	if n := e.LockCount(); n != 1 {
		t.Fatalf("refused requests locked something: %d locks", n)
	}
	if code, b := e.Do("POST", "/api/v1/campaigns/01KB2X7ZQ0ZZZZZZ/lock", tokAll, apiv1.CampaignLockRequest{Reason: "x"}); code != http.StatusNotFound {
		t.Errorf("unknown campaign: got %d %s, want 404", code, b)
	}

	// The out.example.net token locks its domain's identities and skips
	// the others.
	var res apiv1.CampaignLockResult
	code := e.DoJSON("POST", "/api/v1/campaigns/"+campA+"/lock", tokOut, apiv1.CampaignLockRequest{Reason: "botnet", Duration: "2h"}, &res)
	if code != http.StatusOK || res.Campaign != campA || len(res.Locked) != 1 || res.Locked[0].Name != "alice@customer.example" ||
		len(res.Skipped) != 1 || res.Skipped[0].Identity != "carol@customer.example" || res.Skipped[0].Reason != "already_locked" ||
		res.SkippedOtherDomains != 2 {
		t.Fatalf("scoped lock: got %d %+v", code, res)
	}
	l, err := e.Locks.Get(ctx, identity.IdentityTarget(domOut, "alice@customer.example"))
	if err != nil || l.Actor != "outtok" || !strings.Contains(l.Reason, "botnet") || !strings.Contains(l.Reason, campA) || l.Expires.Sub(l.Start) != 2*time.Hour {
		t.Errorf("got lock %+v (%v), want outtok's 2h lock naming the campaign", l, err)
	}
	if e.isLockedAPI(domOther, "mallory@other.example") {
		t.Errorf("the scoped token locked another domain's identity")
	}

	// root locks the rest: mallory; alice and carol are locked already,
	// zed's domain is not configured.
	res = apiv1.CampaignLockResult{}
	if code := e.DoJSON("POST", "/api/v1/campaigns/"+campA+"/lock", tokAll, apiv1.CampaignLockRequest{Reason: "botnet"}, &res); code != http.StatusOK ||
		len(res.Locked) != 1 || res.Locked[0].Name != "mallory@other.example" || !res.Locked[0].Expires.IsZero() || res.SkippedOtherDomains != 0 {
		t.Fatalf("root lock: got %d %+v", code, res)
	}
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.Identity] = s.Reason
	}
	want := map[string]string{"alice@customer.example": "already_locked", "carol@customer.example": "already_locked", "zed@gone.example": "unknown_domain"}
	if fmt.Sprint(skipped) != fmt.Sprint(want) {
		t.Errorf("got skipped %v, want %v", skipped, want)
	}
	var d apiv1.CampaignDetail
	e.DoJSON("GET", "/api/v1/campaigns/"+campA, tokAll, nil, &d)
	for _, m := range d.Members {
		if m.Locked != (m.Domain != "gone.example") {
			t.Errorf("%s: locked %v after the lock", m.Identity, m.Locked)
		}
	}
	// One audit entry per lock taken, with the campaign in the detail.
	entries := e.AuditEntries(ops.AuditFilter{Action: ops.AuditLock})
	if len(entries) != 2 || entries[0].Target.Name != "mallory@other.example" || entries[1].Target.Name != "alice@customer.example" ||
		entries[1].Actor != "outtok" || !strings.Contains(entries[1].Detail, "campaign "+campA) || entries[1].Reason == "" {
		t.Errorf("got audit %+v", entries)
	}
}

// isLockedAPI reports whether an identity is locked now.
func (e *env) isLockedAPI(domain, name string) bool {
	l, err := e.Locks.Get(context.Background(), identity.IdentityTarget(domain, name))
	return err == nil && l.Active(e.Clock.Now())
}
