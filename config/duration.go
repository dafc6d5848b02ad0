package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outguard/outguard/internal/duration"
)

// Duration is a time.Duration written as Go writes durations ("90s",
// "10m", "1h30m") or with a day or week suffix ("30d", "2w"). "0" is zero.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses the forms Duration accepts (internal/duration).
func ParseDuration(s string) (time.Duration, error) { return duration.Parse(s) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration like \"10m\"", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// String formats d as a Go duration.
func (d Duration) String() string { return time.Duration(d).String() }
