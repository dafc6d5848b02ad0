package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds and default of store.min_free_space (docs/config-store.md).
const (
	// DefaultMinFreePercent and DefaultMinFreeBytes make the default
	// reserve: the smaller of the two.
	DefaultMinFreePercent = 2
	DefaultMinFreeBytes   = 256 << 20
	MaxMinFreePercent     = 50
	MaxMinFreeBytes       = 1 << 50
)

// FreeSpace is the free space store.min_free_space keeps on the
// filesystem of the database: a size ("256MiB", "1GiB", "500MB", or a
// number of bytes) or a share of the filesystem's size ("2%"). The zero
// value is the default, the smaller of 2% and 256 MiB; "0" turns the
// reserve off.
type FreeSpace struct {
	// Set is false for the default.
	Set bool
	// Bytes is the reserve when Percent is zero; 0 is off.
	Bytes int64
	// Percent is the reserve as a share of the filesystem's size.
	Percent float64
}

// Of returns the reserve in bytes on a filesystem of total bytes.
func (f FreeSpace) Of(total uint64) uint64 {
	switch {
	case !f.Set:
		return min(total/100*DefaultMinFreePercent, DefaultMinFreeBytes)
	case f.Percent > 0:
		return uint64(float64(total) * f.Percent / 100)
	}
	return uint64(f.Bytes)
}

// String formats f as the configuration writes it ("" for the default).
func (f FreeSpace) String() string {
	switch {
	case !f.Set:
		return ""
	case f.Percent > 0:
		return strconv.FormatFloat(f.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(f.Bytes, 10)
}

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest suffixes first: "MiB" before "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseFreeSpace parses the forms FreeSpace accepts. "" is the default.
func ParseFreeSpace(s string) (FreeSpace, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return FreeSpace{}, nil
	}
	if n, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		if err != nil || math.IsNaN(v) || v <= 0 || v > MaxMinFreePercent {
			return FreeSpace{}, fmt.Errorf("invalid free space %q: a share must be above 0%% and at most %d%%, e.g. \"2%%\"", s, MaxMinFreePercent)
		}
		return FreeSpace{Set: true, Percent: v}, nil
	}
	num, mult := s, 1.0
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v*mult > MaxMinFreeBytes {
		return FreeSpace{}, fmt.Errorf("invalid free space %q: use a size like \"256MiB\" or \"1GiB\", a share like \"2%%\", or 0 to turn the reserve off", s)
	}
	return FreeSpace{Set: true, Bytes: int64(v * mult)}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *FreeSpace) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a size like \"256MiB\" or a share like \"2%%\"", n.Line)
	}
	v, err := ParseFreeSpace(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	*f = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (f FreeSpace) MarshalYAML() (any, error) { return f.String(), nil }
