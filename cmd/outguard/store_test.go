package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/pgdb"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// storeConfig writes a configuration on the postgres backend with the DSN
// in a dsn_file, and returns its path.
func storeConfig(t *testing.T, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	base, err := os.ReadFile("../../config/testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pg.dsn"), []byte(dsn+"\n"), 0o600)
	path := filepath.Join(dir, "outguard.yaml")
	cfg := string(base) + "node_name: cli-node\ndata_dir: " + dir + "\nstore:\n  backend: postgres\n  postgres:\n    dsn_file: pg.dsn\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreMigrateVerb(t *testing.T) {
	cfg := storeConfig(t, pgtest.NewDatabase(t))
	migs, _ := pgdb.Migrations()

	out, errOut, code := runCLI(t, "store", "migrate", "--config", cfg, "--status", "--json")
	var st struct {
		Applied []pgdb.Applied   `json:"applied"`
		Pending []pgdb.Migration `json:"pending"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Applied) != 0 || len(st.Pending) != len(migs) {
		t.Fatalf("status before: exit %d, %q %q; want every migration pending", code, out, errOut)
	}

	out, errOut, code = runCLI(t, "store", "migrate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "applied 0001 nodes") || !strings.Contains(out, "schema at version") {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runCLI(t, "store", "migrate", "--config", cfg, "--json")
	var res struct {
		Version int              `json:"version"`
		Applied []pgdb.Migration `json:"applied"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || len(res.Applied) != 0 || res.Version != migs[len(migs)-1].Version {
		t.Fatalf("second migrate: exit %d, %q; want nothing applied at the latest version", code, out)
	}
	out, _, code = runCLI(t, "store", "migrate", "--config", cfg, "--status")
	if code != 0 || !strings.Contains(out, "applied  0001 nodes") || !strings.Contains(out, "by cli-node") || strings.Contains(out, "pending") {
		t.Errorf("status after: exit %d, %q", code, out)
	}
}

func TestStoreVerbErrors(t *testing.T) {
	dir := t.TempDir()
	bbolt := filepath.Join(dir, "bbolt.yaml")
	base, _ := os.ReadFile("../../config/testdata/minimal.yaml")
	os.WriteFile(bbolt, base, 0o600)
	unreachable := storeConfig(t, "host=127.0.0.1 port=1 user=x dbname=x sslmode=disable connect_timeout=2")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no sub-verb", []string{"store"}, 2, "usage: outguard store migrate"},
		{"unknown sub-verb", []string{"store", "move"}, 2, "usage: outguard store migrate|copy"},
		{"no config", []string{"store", "migrate"}, 2, "--config FILE is required"},
		{"bbolt backend", []string{"store", "migrate", "--config", bbolt}, 2, "store.backend bbolt"},
		{"invalid config", []string{"store", "migrate", "--config", "../../config/testdata/bad-core-unknown-key.yaml"}, 2, "unknown key"},
		{"unreachable", []string{"store", "migrate", "--config", unreachable, "--timeout", "5s"}, 1, "127.0.0.1:1"},
		{"help", []string{"store", "--help"}, 0, "outguard_schema_migrations"},
		{"copy help", []string{"store", "copy", "--help"}, 0, "store_copy_progress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, output %q; want exit %d containing %q", code, out+errOut, tc.code, tc.want)
			}
		})
	}
}
