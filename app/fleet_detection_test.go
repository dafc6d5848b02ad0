package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
