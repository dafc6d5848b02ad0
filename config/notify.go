package config

// Notify configures webhooks and notification mail.
// Owned by the notify work: fill in fields, defaults and validation here.
type Notify struct{}

func (c *Notify) setDefaults() {}

// validate returns nil or an error wrapping ErrInvalid that says how to fix
// the value.
func (c *Notify) validate(cfg *Config) error { return nil }

// resolvePaths makes relative file paths in this section absolute.
func (c *Notify) resolvePaths(abs func(*string)) {}
