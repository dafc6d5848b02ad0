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
		{"bad-store-unknown-key.yaml", "retention"},
	}
	cases := make([]badCase, 0, len(tests))
	for _, tt := range tests {
		cases = append(cases, badCase{tt.file, []string{tt.want}})
	}
	checkBadFixtures(t, "bad-store-", sectionBase, cases)
}
