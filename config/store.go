package config

// Store configures the message log and the quarantine.
// Owned by the store work: fill in fields, defaults and validation here.
type Store struct{}

func (c *Store) setDefaults() {}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Store) validate(cfg *Config) error { return nil }

// resolvePaths makes relative file paths in this section absolute.
func (c *Store) resolvePaths(abs func(*string)) {}
