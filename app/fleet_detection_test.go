package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/baseline"
	"github.com/outguard/outguard/campaign"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// TestFleetCampaignConfirmation: a campaign seen on node A and confirmed
// through A's API is refused on node B, which never saw it, and on a node
// D started afterwards; withdrawn through A, B relays it again. A scanner's
// confirmation on B (a GTUBE copy of another campaign) is refused on C.
func TestFleetCampaignConfirmation(t *testing.T) {
	f := startFleet(t)
	for i := range 3 {
		if err := f.send(t, 0, testMessage(fmt.Sprint("shop", i), "Your seasonal gift", campaignText(i))); err != nil {
			t.Fatalf("campaign copy %d on A: %v", i, err)
		}
	}
	code, body := f.api(t, 0, "GET", "/api/v1/campaigns?min_identities=3", "")
	var list struct {
		Campaigns []struct {
			ID string `json:"id"`
		} `json:"campaigns"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Campaigns) != 1 {
		t.Fatalf("campaigns on A: %d %s", code, body)
	}
	id := list.Campaigns[0].ID
	if code, body := f.api(t, 0, "POST", "/api/v1/campaigns/"+id+"/confirm", ""); code != 200 {
		t.Fatalf("confirm on A: %d %s", code, body)
	}
	confirmed := time.Now()
	// refusedOn sends copy n of the campaign through node i from a fresh
	// identity (blocked copies count towards automatic locks) and reports
	// whether its confirmed campaign refused it.
	refusedOn := func(i int, n int, text func(int) string) bool {
		t.Helper()
		err := f.send(t, i, testMessage(fmt.Sprint("copy", n), "Your seasonal gift", text(n)))
		if err == nil {
			return false
		}
		if r := replyOf(err); r == nil || r.Code != 550 {
			t.Fatalf("node %d: %v, want 250 or 550", i, err)
		}
		code, body := f.api(t, i, "GET", "/api/v1/messages/"+idOf(t, err), "")
		if code != 200 || !strings.Contains(body, "campaign:CONFIRMED(") {
			t.Fatalf("node %d refused copy %d, but not for its confirmed campaign: %d %s", i, n, code, body)
		}
		return true
	}
	for len(f.nodes[1].campaigns.List(campaign.Filter{Confirmed: true})) == 0 {
		if time.Since(confirmed) > 30*time.Second {
			t.Fatal("node B has no confirmed campaign 30s after the confirmation on node A")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("a confirmation through node A was applied on node B after %v", time.Since(confirmed))
	n := 10
	if !refusedOn(1, n, campaignText) {
		t.Fatal("node B relays the campaign confirmed on node A")
	}
	n++

	// A node started after the confirmation refuses it from its first
	// message.
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	dsn, err := f.nodes[0].opts.Config.Store.Postgres.ReadDSN()
	if err != nil {
		t.Fatal(err)
	}
	d := startNode(t, "node-d", dsn, nh.Addr, "", &logs)
	dfleet := &fleet{nodes: []*App{d}}
	err = dfleet.send(t, 0, testMessage("", "Your seasonal gift", campaignText(40)))
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Errorf("node D, started after the confirmation: %v, want the campaign refused", err)
	} else if d.store.Flush(context.Background()); true {
		rec, gerr := d.store.Get(idOf(t, err))
		if gerr != nil || !slices.ContainsFunc(rec.Reasons, func(s string) bool { return strings.HasPrefix(s, "campaign:CONFIRMED(") }) {
			t.Errorf("node D refused the copy, but not for its confirmed campaign: %v %+v", gerr, rec)
		}
	}

	if code, body := f.api(t, 0, "POST", "/api/v1/campaigns/"+id+"/unconfirm", ""); code != 200 {
		t.Fatalf("unconfirm on A: %d %s", code, body)
	}
	withdrawn := time.Now()
	for refusedOn(1, n, campaignText) {
		if time.Since(withdrawn) > 30*time.Second {
			t.Fatal("node B still refuses the campaign 30s after its withdrawal on node A")
		}
		n++
	}

	// A scanner's confirmation travels too: GTUBE in a copy of another
	// campaign on B confirms it; C refuses its next copy.
	other := func(i int) string {
		return strings.ReplaceAll(campaignText(i), "garden centre", "bicycle shop")
	}
	if err := f.send(t, 1, testMessage("bike0", "Spring service", other(0))); err != nil {
		t.Fatal(err)
	}
	err = f.send(t, 1, testMessage("bike1", "Spring service", other(1)+"\r\n"+gtube))
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("the GTUBE copy on B: %v, want 550", err)
	}
	scanned := time.Now()
	for n := 2; !refusedOn(2, n, other); n++ {
		if time.Since(scanned) > 30*time.Second {
			t.Fatal("node C still relays the campaign 30s after the scanner confirmed it on node B")
		}
	}
}

// TestFleetContentLessonsAddUp: two running nodes each learn a lesson;
// each then scores with both, and a third node started later too
// (docs/content-model.md, "Several nodes").
func TestFleetContentLessonsAddUp(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := newEnv(t, "", fleetExtra("mx-a", dsn))
	b := newEnv(t, "", fleetExtra("mx-b", dsn))
	if a.app.learner == nil {
		t.Fatal("the content model is off in the test configuration")
	}
	spam, ham := content.Features{1, 2, 3, 4, 5}, content.Features{6, 7, 8, 9}
	if _, _, err := a.app.learner.Learn(spam, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.app.learner.Learn(ham, nil, false); err != nil {
		t.Fatal(err)
	}
	wantSpam, _ := a.app.learner.Score(spam)
	wantHam, _ := b.app.learner.Score(ham)
	learnt := time.Now()
	for {
		bs, _ := b.app.learner.Score(spam)
		ah, _ := a.app.learner.Score(ham)
		if bs == wantSpam && ah == wantHam {
			break
		}
		if time.Since(learnt) > 30*time.Second {
			t.Fatalf("30s after the lessons: B scores A's spam %.3f (want %.3f), A scores B's ham %.3f (want %.3f)", bs, wantSpam, ah, wantHam)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("each node scored with the other's lesson %v after it", time.Since(learnt))
	c := newEnv(t, "", fleetExtra("mx-c", dsn))
	cs, _ := c.app.learner.Score(spam)
	ch, _ := c.app.learner.Score(ham)
	if cs != wantSpam || ch != wantHam || c.app.learner.Info().Learned != 2 {
		t.Errorf("node C, started later: %.3f %.3f, %d lessons; want %.3f %.3f, 2", cs, ch, c.app.learner.Info().Learned, wantSpam, wantHam)
	}
}

// startBaselineFleet starts three nodes on one database, sharing clk, with
// baseline locking of new identities at 30 messages an hour (suspect at
// 29) and no periodic round: the test runs the rounds itself.
func startBaselineFleet(t *testing.T, clk *clock) *fleet {
	t.Helper()
	extra := strings.Replace(pipelineExtra, "identity:\n", `identity:
  flush_interval: 10m
  baseline:
    new_identity_messages: {suspect: 29, lock: 30}
`, 1)
	return startFleetWith(t, extra, clk.Now)
}

// sharedProfile reads key's profile from detection_profiles.
func sharedProfile(t *testing.T, a *App, ident string) baseline.Stats {
	t.Helper()
	var raw []byte
	if err := a.pg.QueryRow(context.Background(), `SELECT profile FROM detection_profiles
		WHERE domain = 'out.example.net' AND identity = $1`, []byte(ident)).Scan(&raw); err != nil {
		t.Fatalf("the shared profile of %s: %v", ident, err)
	}
	var p baseline.Profile
	if err := p.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	return p.Stats()
}

// TestFleetBaselineBurstLocksAtFleetCount: a new identity's burst spread
// over three nodes is judged on the fleet's count. 29 messages, at most 10
// per node, with a merging round on each node, leave it unlocked and every
// node's profile at 29 (none of the nodes' counts lost, though all three
// hold the profile); the 30th locks it, by the baseline, at a count of 30
// against 30, and every node refuses it. An hour counted by several nodes
// is learned once, from the fleet's count.
func TestFleetBaselineBurstLocksAtFleetCount(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	f := startBaselineFleet(t, clk)
	rounds := func() {
		// Two passes: in the second each node reads back what the nodes
		// after it merged in the first.
		for range 2 {
			for _, a := range f.nodes {
				a.detect.saveProfiles()
			}
		}
	}
	for i := range 29 {
		if err := f.send(t, i%3, testMessage("burst", fmt.Sprintf("Offer %d", i), "The minutes of the committee are on the shared drive.")); err != nil {
			t.Fatalf("message %d on node %d: %v", i, i%3, err)
		}
		clk.Advance(time.Second)
		if i%3 == 2 {
			f.nodes[i%3].detect.saveProfiles()
		}
	}
	rounds()
	for i := range f.nodes {
		if code, body := f.api(t, i, "GET", "/api/v1/locks/identity/out.example.net/burst", ""); code != 404 {
			t.Fatalf("node %d: the identity is locked (or %d %s) after 29 messages; the lock is at 30", i, code, body)
		}
		p, ok := f.nodes[i].detect.base.Load("out.example.net\x00burst")
		if !ok || p.Stats().Messages != 29 {
			t.Errorf("node %d's profile counts %v messages this hour, want the fleet's 29", i, p.Stats().Messages)
		}
	}
	if s := sharedProfile(t, f.nodes[0], "burst"); s.Messages != 29 {
		t.Errorf("the shared profile counts %v messages, want 29 (10, 10 and 9 from the three nodes)", s.Messages)
	}
	// The 30th, on node B, which saw 10 itself.
	if err := f.send(t, 1, testMessage("burst", "Offer 29", "The minutes of the committee are on the shared drive.")); err != nil {
		t.Fatalf("the 30th message: %v", err)
	}
	code, body := f.api(t, 2, "GET", "/api/v1/locks/identity/out.example.net/burst", "")
	if code != 200 || !strings.Contains(body, `"counter":"baseline:new_identity_volume"`) || !strings.Contains(body, `"count":30`) || !strings.Contains(body, `"threshold":30`) {
		t.Fatalf("the lock seen through node C after the 30th message: %d %s; want the baseline's lock at 30 against 30", code, body)
	}
	for i := range f.nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := f.send(t, i, testMessage("burst", "again", "hello"))
			if r := replyOf(err); r != nil && r.Code == 550 && strings.Contains(r.Message, "locked") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: %v, want refused as locked", i, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// A burst of 30 over the three nodes between two rounds: no node saw
	// more than 10, and the round that merges the fleet's 30 locks it,
	// with no further message.
	for i := range 30 {
		if err := f.send(t, i%3, testMessage("wave", fmt.Sprintf("Offer %d", i), "The minutes of the committee are on the shared drive.")); err != nil {
			t.Fatalf("wave %d on node %d: %v", i, i%3, err)
		}
	}
	if code, _ := f.api(t, 0, "GET", "/api/v1/locks/identity/out.example.net/wave", ""); code != 404 {
		t.Fatalf("the wave is locked (%d) before any round; each node saw 10", code)
	}
	rounds()
	code, body = f.api(t, 1, "GET", "/api/v1/locks/identity/out.example.net/wave", "")
	if code != 200 || !strings.Contains(body, `"counter":"baseline:new_identity_volume"`) || !strings.Contains(body, `"count":30`) {
		t.Fatalf("the wave after the rounds: %d %s; want locked by the baseline at the fleet's 30", code, body)
	}
	locks := 0
	for _, l := range f.logs {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, `msg="identity locked automatically"`) && strings.Contains(line, "by=baseline") {
				locks++
			}
		}
	}
	if want := 2; locks != want { // the burst's, and the wave's by the round
		t.Errorf("%d automatic locks logged over the fleet, want %d (one per identity)", locks, want)
	}

	// Another identity: 8 messages on each node in one hour, then one on
	// A and one on C in the next. Its first hour is learned once, on the
	// shared profile, as 24 messages.
	for i := range 24 {
		if err := f.send(t, i%3, testMessage("steady", fmt.Sprintf("Note %d", i), "The minutes are on the shared drive.")); err != nil {
			t.Fatalf("steady %d: %v", i, err)
		}
	}
	rounds()
	clk.Advance(time.Hour)
	for _, i := range []int{0, 2} {
		if err := f.send(t, i, testMessage("steady", "Next hour", "The minutes are on the shared drive.")); err != nil {
			t.Fatal(err)
		}
	}
	rounds()
	s := sharedProfile(t, f.nodes[1], "steady")
	if s.ActiveHours != 1 || s.UsualMessages != 24 || s.Messages != 2 || s.PeakMessages < 23.9 || s.PeakMessages > 24 {
		t.Errorf("shared profile after the hour: %d active hours, usual %v, peak %v, this hour %v; want 1, 24, 24 decayed an hour, 2",
			s.ActiveHours, s.UsualMessages, s.PeakMessages, s.Messages)
	}
	for _, i := range []int{0, 2} {
		p, _ := f.nodes[i].detect.base.Load("out.example.net\x00steady")
		if p.Stats() != s {
			t.Errorf("node %d's profile %+v, want the shared %+v", i, p.Stats(), s)
		}
	}
	// Node B, which held the profile but sent nothing in the new hour,
	// rolls over on its own with its next message; the round replaces
	// what it learned with the shared profile, which learns nothing more.
	if err := f.send(t, 1, testMessage("steady", "Next hour on B", "The minutes are on the shared drive.")); err != nil {
		t.Fatal(err)
	}
	rounds()
	s = sharedProfile(t, f.nodes[1], "steady")
	if s.ActiveHours != 1 || s.UsualMessages != 24 || s.Messages != 3 {
		t.Errorf("shared profile after B's message: %d active hours, usual %v, this hour %v; want 1, 24, 3", s.ActiveHours, s.UsualMessages, s.Messages)
	}
	if p, _ := f.nodes[1].detect.base.Load("out.example.net\x00steady"); p.Stats() != s {
		t.Errorf("node B's profile %+v, want the shared %+v", p.Stats(), s)
	}
}
