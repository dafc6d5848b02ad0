package identity

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// load fills the lock index and the windows from bbolt at Open. Windows
// whose entries have all left their windows are dropped.
func (m *Manager) load() error {
	now := m.now().UnixNano()
	var stale [][]byte
	err := m.db.View(func(tx *bolt.Tx) error {
		if err := m.loadLocks(tx); err != nil {
			return err
		}
		m.wouldCount.Store(int64(tx.Bucket(bucketWouldLocks).Stats().KeyN))
		return tx.Bucket(bucketWindows).ForEach(func(k, v []byte) error {
			w := &window{}
			if err := json.Unmarshal(v, w); err != nil {
				// A damaged window only loses counts: drop it
				// rather than refuse to start.
				m.log.Warn("identity: dropping undecodable window state", "key", string(k), "err", err)
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			w.restore()
			for c := range numCounters {
				w.prune(c, now)
			}
			if w.idle(now) {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			key := string(k)
			m.shardOf(key).windows[key] = w
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("identity: loading: %w", err)
	}
	if len(stale) == 0 {
		return nil
	}
	err = m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWindows)
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: dropping stale windows: %w", err)
	}
	return nil
}

// flush forgets idle windows and writes every window changed since the
// last flush in one bbolt transaction. Encoding happens under each shard's
// mutex in turn, the write under none.
func (m *Manager) flush() error {
	now := m.now().UnixNano()
	puts := map[string][]byte{}
	var dels []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for k, w := range sh.windows {
			if w.idle(now) {
				delete(sh.windows, k)
				sh.dirty[k] = nil
			}
		}
		for k, w := range sh.dirty {
			if w == nil {
				dels = append(dels, k)
				continue
			}
			v, err := json.Marshal(w)
			if err != nil {
				sh.mu.Unlock()
				return fmt.Errorf("identity: encoding window %q: %w", k, err)
			}
			puts[k] = v
		}
		clear(sh.dirty)
		sh.mu.Unlock()
	}
	if len(puts) == 0 && len(dels) == 0 {
		return nil
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWindows)
		for k, v := range puts {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range dels {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		m.redirty(puts, dels)
		return fmt.Errorf("identity: writing windows: %w", err)
	}
	return nil
}

// redirty marks windows dirty again after a failed write so the next flush
// retries them.
func (m *Manager) redirty(puts map[string][]byte, dels []string) {
	for k := range puts {
		sh := m.shardOf(k)
		sh.mu.Lock()
		if _, ok := sh.dirty[k]; !ok {
			if w := sh.windows[k]; w != nil {
				sh.dirty[k] = w
			}
		}
		sh.mu.Unlock()
	}
	for _, k := range dels {
		sh := m.shardOf(k)
		sh.mu.Lock()
		if _, ok := sh.dirty[k]; !ok && sh.windows[k] == nil {
			sh.dirty[k] = nil
		}
		sh.mu.Unlock()
	}
}
