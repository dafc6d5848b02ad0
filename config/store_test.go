package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreDefaults(t *testing.T) {
	c, err := Parse([]byte(sectionBase))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s := c.Store
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"path", s.Path, ""},
		{"StorePath", c.StorePath(), filepath.Join(DefaultDataDir, "outguard.db")},
		{"log_retention", s.LogRetention.D(), 30 * 24 * time.Hour},
		{"quarantine_retention", s.QuarantineRetention.D(), 14 * 24 * time.Hour},
		{"sweep_interval", s.SweepInterval.D(), time.Hour},
		{"queue_size", s.QueueSize, 4096},
		{"max_batch", s.MaxBatch, 2048},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestStoreValid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		section string
		check   func(c *Config) string
	}{
		{"short log retention shortens the quarantine default", "store:\n  log_retention: 7d\n", func(c *Config) string {
			if got := c.Store.QuarantineRetention.D(); got != 7*24*time.Hour {
				return "quarantine_retention " + got.String() + ", want 168h"
			}
			return ""
		}},
		{"weeks and explicit values", "store:\n  log_retention: 8w\n  quarantine_retention: 2w\n  sweep_interval: 15m\n  queue_size: 100000\n  max_batch: 5000\n", func(c *Config) string {
			if c.Store.LogRetention.D() != 56*24*time.Hour || c.Store.QueueSize != 100000 {
				return "values not taken"
			}
			return ""
		}},
		{"explicit path", "store:\n  path: /var/lib/outguard/log.db\n", func(c *Config) string {
			if c.StorePath() != "/var/lib/outguard/log.db" {
				return "StorePath " + c.StorePath()
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(sectionBase + tc.section))
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if msg := tc.check(c); msg != "" {
				t.Errorf("got %s", msg)
			}
		})
	}
}

func TestStoreRelativePath(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, section, want string
	}{
		{"default under data_dir", "data_dir: state\n", filepath.Join(dir, "state", "outguard.db")},
		{"relative to the file", "store:\n  path: db/og.db\n", filepath.Join(dir, "db", "og.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "outguard.yaml")
			if err := os.WriteFile(path, []byte(sectionBase+tc.section), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.StorePath(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStoreExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "example-store.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(sectionBase + string(b)))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if c.Store.LogRetention.D() != DefaultStoreLogRetention || c.Store.QuarantineRetention.D() != DefaultStoreQuarantineRetention {
		t.Errorf("example: got %+v, want the defaults", c.Store)
	}
}

func TestStoreBad(t *testing.T) {
	tests := []struct {
		file string
		want string // a substring of the error: the key and the hint
	}{
		{"bad-store-log-retention.yaml", "store.log_retention"},
		{"bad-store-quarantine-retention.yaml", "store.quarantine_retention"},
		{"bad-store-quarantine-longer-than-log.yaml", "exceeds store.log_retention"},
		{"bad-store-sweep-interval.yaml", "store.sweep_interval"},
		{"bad-store-queue-size.yaml", "store.queue_size"},
		{"bad-store-max-batch.yaml", "store.max_batch"},
		{"bad-store-path-directory.yaml", "store.path"},
		{"bad-store-duration-syntax.yaml", "forever"},
		{"bad-store-min-free-space.yaml", "80%"},
		{"bad-store-unknown-key.yaml", "retention"},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{tt.file, []string{tt.want}})
	}
	checkBadFixtures(t, "bad-store-", sectionBase, cases)
}

func TestParseFreeSpace(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		in string
		ok bool
		// of is the reserve on a 100 GiB and on a 1 GiB filesystem.
		big, small uint64
	}{
		{"", true, DefaultMinFreeBytes, gib / 100 * 2},
		{"0", true, 0, 0},
		{"256MiB", true, 256 << 20, 256 << 20},
		{"1 GiB", true, gib, gib},
		{"500MB", true, 500e6, 500e6},
		{"1.5KiB", true, 1536, 1536},
		{"4096", true, 4096, 4096},
		{"5%", true, 5 * gib, gib / 20},
		{"0.5%", true, gib / 2, gib / 200},
		{"0%", false, 0, 0},
		{"51%", false, 0, 0},
		{"-1MiB", false, 0, 0},
		{"lots", false, 0, 0},
		{"2PiB", false, 0, 0},
		{"Inf", false, 0, 0},
		{"NaN%", false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			f, err := ParseFreeSpace(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseFreeSpace(%q) = %+v, %v; want ok %v", tc.in, f, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if got := f.Of(100 * gib); got != tc.big {
				t.Errorf("on 100 GiB: got %d, want %d", got, tc.big)
			}
			if got := f.Of(gib); got != tc.small {
				t.Errorf("on 1 GiB: got %d, want %d", got, tc.small)
			}
			if tc.in != "" {
				back, err := ParseFreeSpace(f.String())
				if err != nil || back != f {
					t.Errorf("String %q parses back as %+v, %v", f.String(), back, err)
				}
			}
		})
	}
}

func FuzzParseFreeSpace(f *testing.F) {
	for _, s := range []string{"", "0", "2%", "256MiB", "1.5 GiB", "1e3KB", "-0", "1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseFreeSpace(s)
		if err != nil {
			return
		}
		if v.Bytes < 0 || v.Bytes > MaxMinFreeBytes || v.Percent < 0 || v.Percent > MaxMinFreePercent {
			t.Fatalf("ParseFreeSpace(%q) = %+v: out of bounds", s, v)
		}
		if v.Of(1<<40) > 1<<40 && v.Percent > 0 {
			t.Fatalf("ParseFreeSpace(%q) = %+v: share above the filesystem", s, v)
		}
	})
}
