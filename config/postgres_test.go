package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreBackendDefaults(t *testing.T) {
	c, err := Parse([]byte(sectionBase))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	if validNodeName(host) != nil {
		host = "outguard"
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"backend", c.Store.Backend, "bbolt"},
		{"max_conns", c.Store.Postgres.MaxConns, 16},
		{"statement_timeout", c.Store.Postgres.StatementTimeout.D(), 5 * time.Second},
		{"spool_max_records", c.Store.Postgres.SpoolMaxRecords, 1000000},
		{"dsn", c.Store.Postgres.DSN, ""},
		{"node_name", c.NodeName, host},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestStorePostgresValid(t *testing.T) {
	c, err := Parse([]byte(sectionBase + `node_name: mx-2.fra_1
store:
  backend: postgres
  postgres:
    dsn: "postgres://outguard@db.example.net:5432/outguard?sslmode=verify-full"
    max_conns: 40
    statement_timeout: 2s
    spool_max_records: 5000
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Store.Backend != StoreBackendPostgres || c.Store.Postgres.MaxConns != 40 || c.Store.Postgres.StatementTimeout.D() != 2*time.Second || c.Store.Postgres.SpoolMaxRecords != 5000 || c.NodeName != "mx-2.fra_1" {
		t.Errorf("values not taken: %+v node %q", c.Store, c.NodeName)
	}
	dsn, err := c.Store.Postgres.ReadDSN()
	if err != nil || !strings.HasPrefix(dsn, "postgres://outguard@db") {
		t.Errorf("ReadDSN: %q, %v", dsn, err)
	}
}

func TestStorePostgresDSNFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pg.dsn"), []byte("  host=db user=outguard dbname=outguard password=s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(path, []byte(sectionBase+"store:\n  backend: postgres\n  postgres:\n    dsn_file: pg.dsn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Store.Postgres.DSNFile != filepath.Join(dir, "pg.dsn") {
		t.Errorf("dsn_file not resolved against the file's folder: %s", c.Store.Postgres.DSNFile)
	}
	dsn, err := c.Store.Postgres.ReadDSN()
	if err != nil || dsn != "host=db user=outguard dbname=outguard password=s3cret" {
		t.Errorf("ReadDSN: %q, %v", dsn, err)
	}

	empty := filepath.Join(dir, "empty.dsn")
	os.WriteFile(empty, []byte("\n"), 0o600)
	p := Postgres{DSNFile: empty}
	if _, err := p.ReadDSN(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty dsn_file: got %v, want an error saying it is empty", err)
	}
	p = Postgres{DSNFile: filepath.Join(dir, "missing.dsn")}
	if _, err := p.ReadDSN(); err == nil || !strings.Contains(err.Error(), "store.postgres.dsn_file") {
		t.Errorf("missing dsn_file: got %v, want an error naming the key", err)
	}
}

func TestStorePostgresBad(t *testing.T) {
	for _, tc := range []struct {
		name, section string
		want          []string
	}{
		{"unknown backend", "store:\n  backend: mysql\n", []string{`store.backend "mysql"`, "bbolt", "postgres"}},
		{"postgres without dsn", "store:\n  backend: postgres\n", []string{"needs store.postgres.dsn or store.postgres.dsn_file"}},
		{"both dsn and dsn_file", "store:\n  backend: postgres\n  postgres:\n    dsn: host=db\n    dsn_file: /etc/outguard/pg.dsn\n", []string{"not both"}},
		{"dsn on bbolt", "store:\n  postgres:\n    dsn: host=db\n", []string{"store.backend is \"bbolt\""}},
		{"bad dsn hides the password", "store:\n  backend: postgres\n  postgres:\n    dsn: \"postgres://u:hunter2@db:notaport/x\"\n", []string{"store.postgres.dsn is not a valid"}},
		{"max_conns zero", "store:\n  backend: postgres\n  postgres:\n    dsn: host=db\n    max_conns: -1\n", []string{"store.postgres.max_conns -1"}},
		{"max_conns too big", "store:\n  postgres:\n    max_conns: 5000\n", []string{"store.postgres.max_conns 5000", "1 to 1000"}},
		{"spool_max_records negative", "store:\n  backend: postgres\n  postgres:\n    dsn: host=db\n    spool_max_records: -1\n", []string{"store.postgres.spool_max_records -1"}},
		{"statement_timeout too short", "store:\n  backend: postgres\n  postgres:\n    dsn: host=db\n    statement_timeout: 10ms\n", []string{"store.postgres.statement_timeout 10ms"}},
		{"unknown postgres key", "store:\n  postgres:\n    pool: 3\n", []string{`unknown key "pool"`}},
		{"node_name with a space", "node_name: \"mx 1\"\n", []string{`node_name "mx 1"`, "letters, digits"}},
		{"node_name too long", "node_name: " + strings.Repeat("n", 64) + "\n", []string{"1 to 63 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(sectionBase + tc.section))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
