package content

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	overlayBucket = []byte("content_overlay")
	overlayKey    = []byte("overlay")
)

// BoltStore keeps the overlay in one key of its own bucket of a shared
// bbolt database, opened and closed by the caller.
type BoltStore struct {
	DB *bolt.DB
}

var _ Store = BoltStore{}

// Load returns the saved overlay, or nil when there is none.
func (s BoltStore) Load() ([]byte, error) {
	var out []byte
	err := s.DB.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(overlayBucket); b != nil {
			if v := b.Get(overlayKey); v != nil {
				out = bytes.Clone(v)
			}
		}
		return nil
	})
	return out, err
}

// Save replaces the saved overlay in one synced transaction.
func (s BoltStore) Save(data []byte) error {
	err := s.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(overlayBucket)
		if err != nil {
			return err
		}
		return b.Put(overlayKey, data)
	})
	if err != nil {
		return fmt.Errorf("content: bbolt: %w", err)
	}
	return nil
}
