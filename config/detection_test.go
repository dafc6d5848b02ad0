package config

import "testing"

// TestDetectionBad: the behaviour detectors' settings are checked, each
// error naming the key and what to use.
func TestDetectionBad(t *testing.T) {
	checkBadFixtures(t, "bad-detection-", sectionBase, []badCase{
		{"bad-detection-baseline-action.yaml", []string{"identity.baseline.action \"ban\"", "use lock or suspect"}},
		{"bad-detection-baseline-factors.yaml", []string{"identity.baseline.suspect_factor 10 and lock_factor 5"}},
		{"bad-detection-baseline-floor.yaml", []string{"identity.baseline.messages_floor", "lock at least suspect"}},
		{"bad-detection-campaigns-users.yaml", []string{"identity.campaigns.users 1", "use 2 to 999"}},
		{"bad-detection-campaigns-retention.yaml", []string{"identity.campaigns.retention 1h0m0s", "use window (2h0m0s) to 7d"}},
		{"bad-detection-refused-share.yaml", []string{"refused_share 130", "percentage from 0"}},
	})
}

// TestDetectionDefaults: the defaults the docs and the example state.
func TestDetectionDefaults(t *testing.T) {
	c, err := Parse([]byte(sectionBase))
	if err != nil {
		t.Fatal(err)
	}
	b, cp := c.Identity.Baseline, c.Identity.Campaigns
	if !*b.Enabled || b.Action != "lock" || b.MaxProfiles != 200_000 || b.SuspectFactor != 10 || b.LockFactor != 20 ||
		b.MessagesFloor != (Levels{100, 300}) || b.NewIdentityMessages != (Levels{200, 500}) {
		t.Errorf("baseline defaults %+v", b)
	}
	if !*cp.Enabled || !*cp.BlockConfirmed || cp.Users != 10 || cp.Recipients != 1000 || cp.MaxFingerprints != 100_000 {
		t.Errorf("campaign defaults %+v", cp)
	}
	if s := c.Identity.Thresholds.RefusedShare; s == nil || *s != 30 {
		t.Errorf("refused_share default %v, want 30", s)
	}
}
