package identity

import (
	"context"
	"encoding/json"
	"fmt"
)

// load fills the lock index and the windows from the store at Open.
// Windows whose entries have all left their windows are dropped.
func (m *Manager) load() error {
	now := m.now().UnixNano()
	if err := m.loadLocks(context.Background()); err != nil {
		return fmt.Errorf("identity: loading: %w", err)
	}
	err := m.store.loadWindows(func(key string, v []byte) bool {
		w := &window{}
		if err := json.Unmarshal(v, w); err != nil {
			// A damaged window only loses counts: drop it rather than
			// refuse to start.
			m.log.Warn("identity: dropping undecodable window state", "key", key, "err", err)
			return false
		}
		w.restore()
		for c := range numCounters {
			w.prune(c, now)
		}
		if w.idle(now) {
			return false
		}
		m.shardOf(key).windows[key] = w
		return true
	})
	if err != nil {
		return fmt.Errorf("identity: loading windows: %w", err)
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
	if err := m.store.writeWindows(puts, dels); err != nil {
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
