package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"

	"github.com/outguard/outguard/baseline"
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

// profileMerger is the store of a fleet's shared profiles
// (docs/baseline.md, "In outguard"): nodes merge their deltas into them
// rather than write whole profiles.
type profileMerger interface {
	// mergeProfiles merges each delta into its key's shared profile with
	// merge, under the row's lock, and writes the result; it returns the
	// merged profiles and the shared profiles of the keys in reread, read
	// in the same transaction. A key's stored profile that cannot be
	// decoded counts as an empty one. On error, the profiles returned are
	// those of the transactions that committed: the other deltas were not
	// merged.
	mergeProfiles(ctx context.Context, deltas map[string]*baseline.Delta, reread []string,
		merge func(key string, p *baseline.Profile, d *baseline.Delta)) (map[string]baseline.Profile, error)
}

// pgDetectionStore keeps the detectors' state in the tables of migration
// 0202_detection.sql. Profiles are keyed by administrative domain and
// identity, so that an identity's profile follows it to whichever node
// sees its mail; every node merges what it counted into it
// (mergeProfiles). Each node keeps its own campaign snapshot; a node
// without one (new, or replacing a dead one) starts from the freshest of
// the fleet.
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

// mergeChunk bounds the rows one transaction of mergeProfiles locks.
const mergeChunk = 1000

func (s *pgDetectionStore) mergeProfiles(ctx context.Context, deltas map[string]*baseline.Delta, reread []string,
	merge func(string, *baseline.Profile, *baseline.Delta)) (map[string]baseline.Profile, error) {
	keys := make([]string, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	// One order for every node, so that two rounds locking the same rows
	// queue rather than deadlock.
	slices.Sort(keys)
	out := make(map[string]baseline.Profile, len(keys)+len(reread))
	for len(keys) > 0 || len(reread) > 0 {
		n := min(len(keys), mergeChunk)
		r := min(len(reread), mergeChunk-n)
		if err := s.mergeChunk(ctx, keys[:n], reread[:r], deltas, merge, out); err != nil {
			return out, err
		}
		keys, reread = keys[n:], reread[r:]
	}
	return out, nil
}

// mergeChunk is one transaction of mergeProfiles: the upsert locks the
// rows of keys (creating those of new identities with an empty profile)
// and returns what they hold; the merged profiles are written back before
// the commit releases the locks.
func (s *pgDetectionStore) mergeChunk(ctx context.Context, keys, reread []string, deltas map[string]*baseline.Delta,
	merge func(string, *baseline.Profile, *baseline.Delta), committed map[string]baseline.Profile) error {
	out := make(map[string]baseline.Profile, len(keys)+len(reread))
	var empty baseline.Profile
	zero, _ := empty.MarshalBinary()
	domains := make([]string, len(keys))
	idents := make([][]byte, len(keys))
	for i, k := range keys {
		domains[i], idents[i] = splitProfileKey(k)
	}
	rdomains := make([]string, len(reread))
	ridents := make([][]byte, len(reread))
	for i, k := range reread {
		rdomains[i], ridents[i] = splitProfileKey(k)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var b pgx.Batch
	if len(keys) > 0 {
		b.Queue(`INSERT INTO detection_profiles (domain, identity, profile, node)
			SELECT d, i, $3, $4 FROM unnest($1::text[], $2::bytea[]) AS u (d, i) ORDER BY d, i
			ON CONFLICT (domain, identity) DO NOTHING`, domains, idents, zero, s.node)
		b.Queue(`SELECT p.domain, p.identity, p.profile FROM detection_profiles p
			JOIN unnest($1::text[], $2::bytea[]) AS u (d, i) ON p.domain = u.d AND p.identity = u.i
			ORDER BY p.domain, p.identity FOR UPDATE OF p`, domains, idents)
	}
	if len(reread) > 0 {
		b.Queue(`SELECT p.domain, p.identity, p.profile FROM detection_profiles p
			JOIN unnest($1::text[], $2::bytea[]) AS u (d, i) ON p.domain = u.d AND p.identity = u.i`, rdomains, ridents)
	}
	br := tx.SendBatch(ctx, &b)
	read := func(fn func(key string, p baseline.Profile)) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var d string
		var id, raw []byte
		_, err = pgx.ForEachRow(rows, []any{&d, &id, &raw}, func() error {
			var p baseline.Profile
			if p.UnmarshalBinary(raw) != nil {
				p = baseline.Profile{} // damaged: the fleet starts it afresh
			}
			fn(d+"\x00"+string(id), p)
			return nil
		})
		return err
	}
	var merged [][]byte
	if len(keys) > 0 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		merged = make([][]byte, len(keys))
		at := make(map[string]int, len(keys))
		for i, k := range keys {
			at[k] = i
		}
		got := 0
		err = read(func(key string, p baseline.Profile) {
			i, ok := at[key]
			if !ok || merged[i] != nil {
				return
			}
			merge(key, &p, deltas[key])
			out[key] = p
			merged[i], _ = p.MarshalBinary()
			got++
		})
		if err == nil && got != len(keys) {
			err = fmt.Errorf("detection_profiles: %d rows locked for %d keys", got, len(keys))
		}
	}
	if err == nil && len(reread) > 0 {
		err = read(func(key string, p baseline.Profile) {
			if _, mergedHere := out[key]; !mergedHere {
				out[key] = p
			}
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE detection_profiles p SET profile = u.p, node = $4, updated_at = now()
			FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS u (d, i, p)
			WHERE p.domain = u.d AND p.identity = u.i`, domains, idents, merged, s.node); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	for k, p := range out {
		committed[k] = p
	}
	return nil
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
