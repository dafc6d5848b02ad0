package config

import (
	"fmt"
	"time"
)

// Baseline is identity.baseline: each identity judged against its own
// sending history (docs/baseline.md).
type Baseline struct {
	// Enabled turns the baseline detector on. Default true.
	Enabled *bool `yaml:"enabled"`
	// Action is what the lock level does: "lock" locks the identity
	// automatically (as the thresholds do, monitor mode recording it
	// instead); "suspect" only counts the message as suspect. The suspect
	// level counts as suspect once per hour. Default "lock".
	Action string `yaml:"action"`
	// MaxProfiles bounds the profiles kept in memory (about 500 bytes
	// each); the others wait in the database. Default 200000.
	MaxProfiles int `yaml:"max_profiles"`
	// Warmup is how long a new identity is held to the absolute limits of
	// NewIdentity instead of its own profile. Default 7d.
	Warmup Duration `yaml:"warmup"`
	// SuspectFactor and LockFactor: an hour's count this many times the
	// identity's usual one (and above the floors) is a departure.
	// Defaults 10 and 20.
	SuspectFactor float64 `yaml:"suspect_factor"`
	LockFactor    float64 `yaml:"lock_factor"`
	// MessagesFloor are the messages per hour below which no departure is
	// reported, at the suspect and lock levels. Defaults 100 and 300.
	MessagesFloor Levels `yaml:"messages_floor"`
	// NewIdentityMessages are the absolute messages per hour of an
	// identity under warm-up, at the suspect and lock levels. Defaults 200
	// and 500.
	NewIdentityMessages Levels `yaml:"new_identity_messages"`
}

// Levels is a pair of per-hour counts: the suspect level and the lock
// level.
type Levels struct {
	Suspect float64 `yaml:"suspect"`
	Lock    float64 `yaml:"lock"`
}

// Defaults of Baseline.
const (
	DefaultBaselineMaxProfiles = 200_000
	DefaultBaselineWarmup      = 7 * 24 * time.Hour
)

func (b *Baseline) setDefaults() {
	if b.Enabled == nil {
		on := true
		b.Enabled = &on
	}
	if b.Action == "" {
		b.Action = "lock"
	}
	if b.MaxProfiles == 0 {
		b.MaxProfiles = DefaultBaselineMaxProfiles
	}
	if b.Warmup == 0 {
		b.Warmup = Duration(DefaultBaselineWarmup)
	}
	if b.SuspectFactor == 0 {
		b.SuspectFactor = 10
	}
	if b.LockFactor == 0 {
		b.LockFactor = 20
	}
	if b.MessagesFloor == (Levels{}) {
		b.MessagesFloor = Levels{Suspect: 100, Lock: 300}
	}
	if b.NewIdentityMessages == (Levels{}) {
		b.NewIdentityMessages = Levels{Suspect: 200, Lock: 500}
	}
}

func (b *Baseline) check() []string {
	var out []string
	if b.Action != "lock" && b.Action != "suspect" {
		out = append(out, fmt.Sprintf("action %q: use lock or suspect", b.Action))
	}
	if b.MaxProfiles < 1000 {
		out = append(out, fmt.Sprintf("max_profiles %d: use at least 1000", b.MaxProfiles))
	}
	if b.Warmup < Duration(time.Hour) || b.Warmup > Duration(90*24*time.Hour) {
		out = append(out, fmt.Sprintf("warmup %s: use 1h to 90d", b.Warmup))
	}
	if b.SuspectFactor < 2 || b.LockFactor < b.SuspectFactor {
		out = append(out, fmt.Sprintf("suspect_factor %v and lock_factor %v: the suspect factor must be at least 2 and the lock factor at least the suspect factor", b.SuspectFactor, b.LockFactor))
	}
	for name, l := range map[string]Levels{"messages_floor": b.MessagesFloor, "new_identity_messages": b.NewIdentityMessages} {
		if l.Suspect < 1 || l.Lock < l.Suspect {
			out = append(out, fmt.Sprintf("%s {suspect: %v, lock: %v}: suspect must be at least 1 and lock at least suspect", name, l.Suspect, l.Lock))
		}
	}
	return out
}

// Campaigns is identity.campaigns: near-duplicate content across
// identities (docs/campaigns.md).
type Campaigns struct {
	// Enabled turns campaign detection on. Default true.
	Enabled *bool `yaml:"enabled"`
	// Users locks every identity of a campaign sent by identities of more
	// than this many distinct outgoing users within Window. Default 10.
	Users int `yaml:"users"`
	// Window is the window of Users. Default 1h.
	Window Duration `yaml:"window"`
	// Recipients reports (log, campaign view) one identity sending a
	// campaign to more than this many recipients. Default 1000.
	Recipients int `yaml:"recipients"`
	// BlockConfirmed refuses near-duplicates of a campaign that an
	// operator or a scanner confirmed as spam or phishing, from any
	// identity. Default true.
	BlockConfirmed *bool `yaml:"block_confirmed"`
	// MaxFingerprints bounds the recent messages remembered (about 1 KB
	// each at most). Default 100000.
	MaxFingerprints int `yaml:"max_fingerprints"`
	// Retention is how long a message's fingerprint is remembered.
	// Default 24h.
	Retention Duration `yaml:"retention"`
}

func (c *Campaigns) setDefaults() {
	on := true
	if c.Enabled == nil {
		c.Enabled = &on
	}
	if c.BlockConfirmed == nil {
		block := true
		c.BlockConfirmed = &block
	}
	if c.Users == 0 {
		c.Users = 10
	}
	if c.Window == 0 {
		c.Window = Duration(time.Hour)
	}
	if c.Recipients == 0 {
		c.Recipients = 1000
	}
	if c.MaxFingerprints == 0 {
		c.MaxFingerprints = 100_000
	}
	if c.Retention == 0 {
		c.Retention = Duration(24 * time.Hour)
	}
}

func (c *Campaigns) check() []string {
	var out []string
	if c.Users < 2 || c.Users > 999 {
		out = append(out, fmt.Sprintf("users %d: use 2 to 999", c.Users))
	}
	if c.Window < Duration(time.Minute) || c.Window > Duration(24*time.Hour) {
		out = append(out, fmt.Sprintf("window %s: use 1m to 24h", c.Window))
	}
	if c.Recipients < 1 {
		out = append(out, fmt.Sprintf("recipients %d: use at least 1", c.Recipients))
	}
	if c.MaxFingerprints < 1000 || c.MaxFingerprints > 10_000_000 {
		out = append(out, fmt.Sprintf("max_fingerprints %d: use 1000 to 10000000", c.MaxFingerprints))
	}
	if c.Retention < c.Window || c.Retention > Duration(7*24*time.Hour) {
		out = append(out, fmt.Sprintf("retention %s: use window (%s) to 7d", c.Retention, c.Window))
	}
	return out
}
