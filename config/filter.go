package config

// Filter configures classification (engines, built-in rules).
// Owned by the filter work: fill in fields, defaults and validation here.
type Filter struct{}

func (c *Filter) setDefaults() {}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Filter) validate(cfg *Config) error { return nil }

// resolvePaths makes relative file paths in this section absolute.
func (c *Filter) resolvePaths(abs func(*string)) {}
