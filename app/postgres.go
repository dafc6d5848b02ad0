package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/pgdb"
)

// What the postgres backend shares and what stays per node, for the
// start-up log line (docs/config-store.md, "What is shared today").
const (
	sharedInPostgres = "locks (with history and evidence), automatic-lock windows with fleet-wide counts, would-lock records, the node table, the message log, quarantined content, report counters, the ARF outbox, the notification outbox, feedback, baseline profiles, campaign snapshots and confirmations, the content model's overlay (each node's lessons), the audit trail, console sessions and the TOTP steps used"
	notSharedYet     = "the sign-in throttle's counts stay in each node's memory"
)

// nodeTouchInterval is how often a node on the postgres backend records
// itself in outguard_nodes.
const nodeTouchInterval = time.Minute

// openPostgres connects to the shared store of store.backend postgres,
// applies the migrations this binary has (under the advisory lock, so
// that nodes starting at once take turns) and records the node. It
// returns nil, nil on the bbolt backend.
func (a *App) openPostgres(cfg *config.Config) (*pgxpool.Pool, error) {
	if cfg.Store.Backend != config.StoreBackendPostgres {
		return nil, nil
	}
	dsn, err := cfg.Store.Postgres.ReadDSN()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgdb.Open(ctx, pgdb.Options{
		DSN:              dsn,
		MaxConns:         cfg.Store.Postgres.MaxConns,
		StatementTimeout: cfg.Store.Postgres.StatementTimeout.D(),
		NodeName:         cfg.NodeName,
	})
	if err != nil {
		return nil, fmt.Errorf("store.postgres: %w", err)
	}
	res, err := pgdb.Migrate(ctx, pool, cfg.NodeName)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store.postgres: %w", err)
	}
	for _, m := range res.Applied {
		a.log.Info("store: applied schema migration", "version", m.Version, "name", m.Name)
	}
	started := a.opts.Now()
	if err := pgdb.TouchNode(ctx, pool, cfg.NodeName, a.opts.Version, started); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store.postgres: %w", err)
	}
	a.pgStop = make(chan struct{})
	a.pgDone = make(chan struct{})
	go func() {
		defer close(a.pgDone)
		t := time.NewTicker(nodeTouchInterval)
		defer t.Stop()
		for {
			select {
			case <-a.pgStop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := pgdb.TouchNode(ctx, pool, cfg.NodeName, a.opts.Version, started); err != nil {
					a.log.Warn("store: recording this node", "err", err)
				}
				cancel()
			}
		}
	}()
	a.log.Info("store: postgres backend, shared by the fleet: "+sharedInPostgres+" in PostgreSQL; "+notSharedYet,
		"schema_version", res.Version, "database", pool.Config().ConnConfig.Database)
	return pool, nil
}

// closePostgres stops the node's bookkeeping and closes the pool, after
// the components that use it.
func (a *App) closePostgres() {
	if a.pg == nil {
		return
	}
	close(a.pgStop)
	<-a.pgDone
	a.pgLoops.Wait()
	a.pg.Close()
	a.pg = nil
}
