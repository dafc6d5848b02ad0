package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"golang.org/x/crypto/bcrypt"
)

// useCampaigns gives the running App a campaign store on its clock, as
// the daemon does when campaign detection is on. Replacing the tokens
// afterwards (an atomic store the API loads on every request) orders the
// assignment before the admin handlers' reads.
func useCampaigns(t *testing.T, e *env) *campaign.Store {
	t.Helper()
	s, err := campaign.New(campaign.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.app.campaigns = s
	if err := e.app.ops.SetTokens(adminTokens(e.app.Config())); err != nil {
		t.Fatal(err)
	}
	return s
}

// parcelPhish is one templated phish, dressed up for recipient n.
func parcelPhish(n int) (subject, text string) {
	names := []string{"Anna", "Boris", "Chloe", "Dmitri", "Eva", "Farid", "Greta", "Hugo"}
	name := names[n%len(names)]
	return fmt.Sprintf("Parcel DE%09d held at customs", 100000+n*7919),
		fmt.Sprintf("Dear %s,\n\nyour parcel DE%09d could not be delivered because customs duties of EUR %d.%02d are unpaid. "+
			"Please settle the amount within 48 hours at https://track-parcel.example/pay/%x?uid=%d or the parcel will be "+
			"returned to the sender. Our customer service team is available around the clock if you have any questions "+
			"about the delivery of your shipment.\n\nKind regards,\nThe delivery team\n", name, 100000+n*7919, 1+n%9, n*13%100, n*104729, n)
}

// sendCampaign relays the campaign over SMTP from identities bot1..botN of
// the trial user and observes each relayed message in s with its log id,
// as the pipeline does. It returns the campaign id.
func sendCampaign(t *testing.T, e *env, s *campaign.Store, n int) string {
	t.Helper()
	id := ""
	for i := 1; i <= n; i++ {
		ident := fmt.Sprintf("bot%d", i)
		subj, text := parcelPhish(i)
		// The content filter may refuse the phish: the log keeps it either
		// way, with the identity.
		if err := e.send("shop@out.example.net", testMessage(ident, subj, strings.ReplaceAll(text, "\n", "\r\n"))); err != nil && replyOf(err) == nil {
			t.Fatalf("%s: %v", ident, err)
		}
		e.flush()
		page, err := e.app.store.Search(quarantine.Query{Identity: ident, Limit: 1})
		if err != nil || len(page.Records) != 1 {
			t.Fatalf("%s: log record: %v %d", ident, err, len(page.Records))
		}
		rec := page.Records[0]
		fp := campaign.Compute(campaign.Input{Subject: subj, Text: text, PerRecipient: []string{"rcpt"}})
		v := campaign.Clean
		if rec.Verdict != quarantine.VerdictClean {
			v = campaign.Spam
		}
		res := s.Observe(&fp, campaign.Message{TxID: rec.ID, Identity: ident, User: rec.User, Recipients: 1, Verdict: v})
		if id == "" {
			id = res.Campaign
		} else if res.Campaign != id {
			t.Fatalf("%s: joined campaign %q, want %q", ident, res.Campaign, id)
		}
	}
	// A copy from an outgoing user no longer configured: its identity has
	// no domain to lock it in.
	subj, text := parcelPhish(99)
	fp := campaign.Compute(campaign.Input{Subject: subj, Text: text})
	if res := s.Observe(&fp, campaign.Message{TxID: "x", Identity: "ghost", User: "removed-user", Recipients: 3}); res.Campaign != id {
		t.Fatalf("ghost: joined %q, want %q", res.Campaign, id)
	}
	return id
}

// apiGet calls the trial token's API and decodes the answer.
func apiGet(t *testing.T, base, method, path string, body string, v any) int {
	t.Helper()
	req, err := http.NewRequest(method, base+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer trial-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// TestCampaignsAPIAndCLI runs the campaign endpoints and the built CLI
// against a running outguard whose campaign store saw a campaign relayed
// over SMTP: list, show with lock state, lock every identity (and see its
// mail refused over SMTP), confirm (and see a new copy blocked by the
// store), unconfirm.
func TestCampaignsAPIAndCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	bin := buildCLI(t)
	e := newEnv(t, "", "")
	base := e.withAdminToken(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLIBinary(t, bin, base, args...)
	}

	// Off: 501 and exit 1. (Set explicitly: the configuration may turn
	// detection on by default; replacing the tokens orders the write
	// before the handlers' reads.)
	e.app.campaigns = nil
	if err := e.app.ops.SetTokens(adminTokens(e.app.Config())); err != nil {
		t.Fatal(err)
	}
	if code := apiGet(t, base, "GET", "/campaigns", "", nil); code != http.StatusNotImplemented {
		t.Fatalf("campaign detection off: got %d, want 501", code)
	}
	if _, errs, code := run("campaigns"); code != 1 || !strings.Contains(errs, "campaign detection is off") {
		t.Errorf("CLI with detection off: exit %d %q", code, errs)
	}

	s := useCampaigns(t, e)
	id := sendCampaign(t, e, s, 4)
	// An unrelated message is a campaign of its own.
	other := campaign.Compute(campaign.Input{Subject: "Minutes of the board meeting", Text: strings.Repeat("The board discussed the budget for next year and agreed to review the plan in March. ", 4)})
	s.Observe(&other, campaign.Message{TxID: "y", Identity: "secretary", User: "trial", Recipients: 1})

	var list apiv1.CampaignList
	if code := apiGet(t, base, "GET", "/campaigns?min_identities=2", "", &list); code != 200 || len(list.Campaigns) != 1 || list.Campaigns[0].ID != id ||
		list.Campaigns[0].Identities != 5 || list.Campaigns[0].Messages != 5 {
		t.Fatalf("list: got %d %+v", code, list)
	}
	var d apiv1.CampaignDetail
	if code := apiGet(t, base, "GET", "/campaigns/"+id, "", &d); code != 200 || len(d.Members) != 5 || d.SampleTx == "" {
		t.Fatalf("detail: got %d %+v", code, d)
	}
	for _, m := range d.Members {
		wantDomain := "out.example.net"
		if m.Identity == "ghost" {
			wantDomain = ""
		}
		if m.Domain != wantDomain || m.Locked {
			t.Errorf("%s: domain %q locked %v, want %q and not locked", m.Identity, m.Domain, m.Locked, wantDomain)
		}
	}
	if rec, err := e.app.store.Get(d.SampleTx); err != nil || rec.Identity != "bot1" {
		t.Errorf("sample %s: %v %v, want bot1's log record", d.SampleTx, rec, err)
	}

	out, errs, code := run("campaigns")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "IDENTITIES") {
		t.Fatalf("campaigns: exit %d\n%s%s", code, out, errs)
	}
	out, _, code = run("campaigns", "--json", "--min-users", "1", "--since", "1h")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"id":"`+id+`"`) {
		t.Errorf("campaigns --json: exit %d\n%s", code, out)
	}
	out, _, code = run("campaigns", "show", id)
	if code != 0 || !strings.Contains(out, "bot3") || !strings.Contains(out, "ghost") || !strings.Contains(out, d.SampleTx) {
		t.Errorf("campaigns show: exit %d\n%s", code, out)
	}
	if _, errs, code := run("campaigns", "show", "01KB2X7ZQ0ZZZZZZ"); code != 1 || !strings.Contains(errs, "no campaign") {
		t.Errorf("show unknown: exit %d %q, want 1", code, errs)
	}

	// Lock bot2 by hand first: the campaign lock skips it.
	if _, err := e.app.ids.Lock(t.Context(), identity.LockRequest{Target: identity.IdentityTarget("out.example.net", "bot2"), Reason: "earlier", Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	out, errs, code = run("campaigns", "lock", id, "--reason", "parcel phish botnet", "--duration", "7d")
	if code != 0 || !strings.Contains(out, "3 locked, 2 skipped") || !strings.Contains(out, "skipped  bot2 (out.example.net): already locked") ||
		!strings.Contains(out, "skipped  ghost (-): no domain") {
		t.Fatalf("campaigns lock: exit %d\n%s%s", code, out, errs)
	}
	for _, ident := range []string{"bot1", "bot3", "bot4"} {
		l, err := e.app.ids.Get(t.Context(), identity.IdentityTarget("out.example.net", ident))
		if err != nil || !l.Active(e.clock.Now()) || l.Actor != "ops" || !strings.Contains(l.Reason, "campaign "+id) {
			t.Errorf("%s: got lock %+v (%v)", ident, l, err)
		}
		// The lock holds over SMTP.
		if err := e.send("shop@out.example.net", testMessage(ident, "after the campaign lock", "hello")); replyOf(err) == nil || replyOf(err).Code != 550 {
			t.Errorf("%s after the campaign lock: %v, want 550", ident, err)
		}
	}
	if err := e.send("shop@out.example.net", testMessage("bot5", "not in the campaign", "hello")); err != nil {
		t.Errorf("an identity outside the campaign: %v", err)
	}
	if code := apiGet(t, base, "GET", "/campaigns/"+id, "", &d); code != 200 {
		t.Fatal(code)
	}
	for _, m := range d.Members {
		if m.Locked != (m.Identity != "ghost") {
			t.Errorf("%s: locked %v after the campaign lock", m.Identity, m.Locked)
		}
	}
	out, _, code = run("campaigns", "lock", id, "--reason", "again", "--json")
	var res apiv1.CampaignLockResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Locked) != 0 || len(res.Skipped) != 5 {
		t.Errorf("second lock: exit %d %s, want nothing locked", code, out)
	}

	// Confirm: a new copy from an identity never seen is blocked.
	out, _, code = run("campaigns", "confirm", id)
	if code != 0 || !strings.Contains(out, "confirmed as spam by ops") {
		t.Fatalf("confirm: exit %d %s", code, out)
	}
	subj, text := parcelPhish(42)
	fp := campaign.Compute(campaign.Input{Subject: subj, Text: text})
	r := s.Observe(&fp, campaign.Message{TxID: "z", Identity: "fresh", User: "trial", Recipients: 1})
	if sig, ok := r.Strongest(); !ok || sig.Kind != campaign.SignalConfirmed || !strings.Contains(sig.Reason, id) {
		t.Errorf("a copy after confirm: got %+v, want the confirmed signal naming %s", r, id)
	}
	if _, _, code := run("campaigns", "unconfirm", id); code != 0 {
		t.Errorf("unconfirm: exit %d", code)
	}
	r = s.Observe(&fp, campaign.Message{TxID: "z2", Identity: "fresh", User: "trial", Recipients: 1})
	if sig, ok := r.Strongest(); ok && sig.Kind == campaign.SignalConfirmed {
		t.Errorf("a copy after unconfirm: still blocked")
	}
	out, _, code = run("audit", "--json")
	for _, want := range []string{`"action":"confirm"`, `"action":"unconfirm"`, `"kind":"campaign"`, "parcel phish botnet"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}

// TestCampaignsScopedListing: a token scoped to out.example.net lists and
// opens only the campaigns with an identity of its domain, and its
// identity filter matches its own domain's identities only.
func TestCampaignsScopedListing(t *testing.T) {
	e := newEnv(t, "", "")
	s, err := campaign.New(campaign.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.app.campaigns = s
	h, err := bcrypt.GenerateFromPassword([]byte("scoped-token"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Also orders the assignment above before the handlers' reads.
	if err := e.app.ops.SetTokens([]ops.Token{{Name: "outadmin", Hash: string(h), Scope: "out.example.net"}}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.app.AdminAddr().String()
	observe := func(n int, ident, user string) string {
		subj, text := parcelPhish(n)
		if n >= 50 {
			text = strings.Repeat(fmt.Sprintf("A different newsletter number %c about gardening, roses, tulips and the spring season. ", 'a'+n%26), 3)
		}
		fp := campaign.Compute(campaign.Input{Subject: subj, Text: text})
		return s.Observe(&fp, campaign.Message{TxID: "t", Identity: ident, User: user, Recipients: 1}).Campaign
	}
	mine := observe(1, "bot1", "trial")
	observe(2, "ghost", "removed-user")
	theirs := observe(50, "stranger", "removed-user")
	get := func(path string, v any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1"+path, nil)
		req.Header.Set("Authorization", "Bearer scoped-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			json.NewDecoder(resp.Body).Decode(v)
		}
		return resp.StatusCode
	}
	var l apiv1.CampaignList
	if code := get("/campaigns", &l); code != 200 || len(l.Campaigns) != 1 || l.Campaigns[0].ID != mine {
		t.Errorf("scoped list: got %d %+v, want only %s", code, l, mine)
	}
	if code := get("/campaigns?identity=ghost", &l); code != 200 || len(l.Campaigns) != 0 {
		t.Errorf("identity of no domain: got %+v, want none", l)
	}
	if code := get("/campaigns?identity=bot1", &l); code != 200 || len(l.Campaigns) != 1 {
		t.Errorf("own identity: got %+v", l)
	}
	var d apiv1.CampaignDetail
	if code := get("/campaigns/"+mine, &d); code != 200 || len(d.Members) != 1 || d.Members[0].Identity != "bot1" || d.HiddenIdentities != 1 {
		t.Errorf("scoped detail: got %d %+v", code, d)
	}
	if code := get("/campaigns/"+theirs, nil); code != http.StatusForbidden {
		t.Errorf("a campaign without the domain's identities: got %d, want 403", code)
	}
}
