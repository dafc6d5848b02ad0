package config

// Identity holds the global settings of identity extraction, locks and
// automatic locking. Per-domain and per-user overrides live in Policy.
type Identity struct {
	// Thresholds are the global automatic-locking thresholds.
	Thresholds Thresholds `yaml:"thresholds"`
}

// IdentityRule is one step of identity extraction: exactly one of Header,
// AuthUser or EnvelopeSender is set.
type IdentityRule struct {
	Header         string `yaml:"header"`
	Regex          string `yaml:"regex"`
	AuthUser       bool   `yaml:"auth_user"`
	EnvelopeSender bool   `yaml:"envelope_sender"`
}

// check returns "" or what is wrong with the rule and how to fix it.
func (r IdentityRule) check() string { return "" }

// Thresholds of automatic locking.
type Thresholds struct{}

// check returns "" or what is wrong and how to fix it.
func (t *Thresholds) check() string { return "" }

func (c *Identity) setDefaults() {}

func (c *Identity) validate(cfg *Config) error { return nil }
