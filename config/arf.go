package config

// ARF configures abuse reports out and feedback in.
// Owned by the arf work: fill in fields, defaults and validation here.
type ARF struct{}

func (c *ARF) setDefaults() {}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *ARF) validate(cfg *Config) error { return nil }

// resolvePaths makes relative file paths in this section absolute.
func (c *ARF) resolvePaths(abs func(*string)) {}
