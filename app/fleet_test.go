package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb/pgtest"
	"github.com/outguard/outguard/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode starts an App named node on the postgres backend at dsn,
// relaying to nextHop, with extra configuration; its log goes to logs.
func startNode(t *testing.T, node, dsn, nextHop, extra string, logs *syncBuffer) *App {
	t.Helper()
	path := testConfig(t, nextHop, fmt.Sprintf("node_name: %s\nstore:\n  backend: postgres\n  postgres:\n    dsn: %q\n    max_conns: 4\n%s", node, dsn, extra))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, ConfigPath: path, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a
}

func TestPostgresBackendStart(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	nh := testutil.StartNextHop(t)
	var logs syncBuffer
	a := startNode(t, "mx-a", dsn, nh.Addr, "", &logs)
	var nodes, version int
	if err := a.pg.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM outguard_nodes WHERE node_name = 'mx-a'), (SELECT max(version) FROM outguard_schema_migrations)").Scan(&nodes, &version); err != nil {
		t.Fatal(err)
	}
	if nodes != 1 || version < 1 {
		t.Errorf("got %d node rows and schema version %d; want the node recorded and the schema migrated", nodes, version)
	}
	out := logs.String()
	if !strings.Contains(out, "store: postgres backend, a partial fleet") || !strings.Contains(out, "node_name=mx-a") {
		t.Errorf("log does not say the backend is postgres and partial, with node_name:\n%s", out)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
}
