package app

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
)

// detectionStore keeps the state of the behaviour detectors
// (docs/baseline.md, docs/campaigns.md): the identities' baseline
// profiles, by "domain\x00identity" (both lower case), and the campaign
// store's snapshot. boltDetectionStore keeps them in this node's bbolt
// file; pgDetectionStore in the tables a fleet shares
// (docs/config-store.md, "What is shared today").
type detectionStore interface {
	// profile returns the stored profile of key.
	profile(ctx context.Context, key string) ([]byte, bool, error)
	// putProfiles writes the profiles of batch in one transaction.
	putProfiles(ctx context.Context, batch map[string][]byte) error
	// campaigns returns the campaign snapshot to start from; nil when
	// there is none.
	campaigns(ctx context.Context) ([]byte, error)
	// putCampaigns replaces this node's campaign snapshot.
	putCampaigns(ctx context.Context, state []byte) error
}

// Buckets of the behaviour detectors: one value per identity profile, and
// the campaign store's state under one key.
var (
	bucketBaseline  = []byte("baseline_profiles")
	bucketCampaigns = []byte("campaigns")
	keyCampaigns    = []byte("state")
)

type boltDetectionStore struct{ db *bolt.DB }

func newBoltDetectionStore(db *bolt.DB) (*boltDetectionStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketBaseline, bucketCampaigns} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &boltDetectionStore{db: db}, err
}

func (s *boltDetectionStore) profile(_ context.Context, key string) (b []byte, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBaseline).Get([]byte(key)); v != nil {
			b, ok = append([]byte(nil), v...), true
		}
		return nil
	})
	return b, ok, err
}

func (s *boltDetectionStore) putProfiles(_ context.Context, batch map[string][]byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBaseline)
		for k, v := range batch {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltDetectionStore) campaigns(context.Context) (state []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCampaigns).Get(keyCampaigns); v != nil {
			state = append([]byte(nil), v...)
		}
		return nil
	})
	return state, err
}

func (s *boltDetectionStore) putCampaigns(_ context.Context, state []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCampaigns).Put(keyCampaigns, state)
	})
}

// pgDetectionStore keeps the detectors' state in the tables of migration
// 0202_detection.sql. Profiles are keyed by administrative domain and
// identity, so that an identity's profile follows it to whichever node
// sees its mail; the last node to write one wins. Each node keeps its own
// campaign snapshot; a node without one (new, or replacing a dead one)
// starts from the freshest of the fleet.
type pgDetectionStore struct {
	pool *pgxpool.Pool
	node string
}

// splitProfileKey returns the domain and identity of a profile key.
func splitProfileKey(key string) (domain string, ident []byte) {
	d, i, _ := strings.Cut(key, "\x00")
	return d, []byte(i)
}

func (s *pgDetectionStore) profile(ctx context.Context, key string) ([]byte, bool, error) {
	d, i := splitProfileKey(key)
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT profile FROM detection_profiles WHERE domain = $1 AND identity = $2", d, i).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return b, err == nil, err
}

func (s *pgDetectionStore) putProfiles(ctx context.Context, batch map[string][]byte) error {
	domains := make([]string, 0, len(batch))
	idents := make([][]byte, 0, len(batch))
	profiles := make([][]byte, 0, len(batch))
	for k, v := range batch {
		d, i := splitProfileKey(k)
		domains, idents, profiles = append(domains, d), append(idents, i), append(profiles, v)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO detection_profiles (domain, identity, profile, node)
		SELECT d, i, p, $4 FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u (d, i, p)
		ON CONFLICT (domain, identity) DO UPDATE
		SET profile = excluded.profile, node = excluded.node, updated_at = now()`,
		domains, idents, profiles, s.node)
	return err
}

func (s *pgDetectionStore) campaigns(ctx context.Context) ([]byte, error) {
	var state []byte
	err := s.pool.QueryRow(ctx, `SELECT state FROM detection_campaigns
		ORDER BY node = $1 DESC, updated_at DESC LIMIT 1`, s.node).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return state, err
}

func (s *pgDetectionStore) putCampaigns(ctx context.Context, state []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO detection_campaigns (node, state) VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET state = excluded.state, updated_at = now()`, s.node, state)
	return err
}
