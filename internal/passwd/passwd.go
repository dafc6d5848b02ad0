// Package passwd hashes and verifies the passwords of outgoing users and the
// admin API tokens. Only hashes are ever stored: bcrypt ($2a$, $2b$, $2y$)
// or argon2id in the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
//
// # Caveats
//
// Verifying a hash is deliberately slow (tens of milliseconds) and, for
// argon2id, takes its m parameter in memory (64 MiB with Hash's). Verifier
// caches successful verifications in memory, keyed by a keyed hash of the
// pair, so that clients opening a connection per message do not pay it
// every time; failures are never cached. It also bounds the memory that
// verifications running at once may take (VerifierOptions.MemoryBudget),
// so that a flood of wrong passwords cannot exhaust the host.
package passwd

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrMismatch is returned when a password does not match its hash.
var ErrMismatch = errors.New("passwd: password does not match")

// ErrUnknownHash is returned for a hash in no supported format.
var ErrUnknownHash = errors.New("passwd: unsupported hash format")

// Argon2id parameters used by Hash (RFC 9106 second recommended option,
// with less memory so a small daemon can verify many).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Hash returns an argon2id hash of password in PHC string format.
func Hash(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// HashBcrypt returns a bcrypt hash of password (cost 10).
func HashBcrypt(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(b), err
}

// Verify checks password against hash. It returns nil, ErrMismatch or
// ErrUnknownHash (possibly wrapped with the reason the hash is malformed).
func Verify(hash, password string) error {
	switch {
	case isBcrypt(hash):
		if len(password) > 72 {
			// bcrypt ignores bytes past 72; refuse rather than accept a
			// password that only matches on its prefix.
			return ErrMismatch
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrMismatch
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnknownHash, err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2id$"):
		return verifyArgon(hash, password)
	}
	return ErrUnknownHash
}

// argonParams are the fields of an argon2id hash in PHC string format.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgon(hash string) (argonParams, error) {
	// $argon2id$v=19$m=65536,t=3,p=2$salt$key
	var a argonParams
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return a, fmt.Errorf("%w: argon2id hash has %d fields, want 6", ErrUnknownHash, len(parts))
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return a, fmt.Errorf("%w: argon2id version %q", ErrUnknownHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &a.memory, &a.time, &a.threads); err != nil {
		return a, fmt.Errorf("%w: argon2id parameters %q", ErrUnknownHash, parts[3])
	}
	if a.memory == 0 || a.memory > 1<<22 || a.time == 0 || a.time > 64 || a.threads == 0 {
		return a, fmt.Errorf("%w: argon2id parameters out of range", ErrUnknownHash)
	}
	enc := base64.RawStdEncoding
	var err error
	if a.salt, err = enc.DecodeString(parts[4]); err != nil {
		return a, fmt.Errorf("%w: argon2id salt: %v", ErrUnknownHash, err)
	}
	a.key, err = enc.DecodeString(parts[5])
	if err != nil || len(a.key) < 16 || len(a.key) > 128 {
		return a, fmt.Errorf("%w: argon2id key", ErrUnknownHash)
	}
	return a, nil
}

func verifyArgon(hash, password string) error {
	a, err := parseArgon(hash)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
	if subtle.ConstantTimeCompare(got, a.key) != 1 {
		return ErrMismatch
	}
	return nil
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// bcryptMemory is about what one bcrypt verification allocates (its
// Blowfish state and key schedule).
const bcryptMemory = 8 << 10

// MemoryCost returns the memory in bytes that verifying a password
// against hash allocates: argon2id's m parameter, a few KiB for bcrypt,
// 0 for a hash in no supported format.
func MemoryCost(hash string) int64 {
	switch {
	case isBcrypt(hash):
		return bcryptMemory
	case strings.HasPrefix(hash, "$argon2id$"):
		a, err := parseArgon(hash)
		if err != nil {
			return 0
		}
		return int64(a.memory) << 10
	}
	return 0
}

// Kind names hash's algorithm and cost, e.g. "argon2id m=65536,t=3,p=2
// salt=16 key=32" or "bcrypt 10": two hashes of the same kind take the
// same time to verify. A hash in no supported format is "".
func Kind(hash string) string {
	switch {
	case isBcrypt(hash):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return ""
		}
		return fmt.Sprintf("bcrypt %d", cost)
	case strings.HasPrefix(hash, "$argon2id$"):
		a, err := parseArgon(hash)
		if err != nil {
			return ""
		}
		return fmt.Sprintf("argon2id m=%d,t=%d,p=%d salt=%d key=%d", a.memory, a.time, a.threads, len(a.salt), len(a.key))
	}
	return ""
}

// HashLike hashes password with the algorithm and cost of hash (its
// parameters, salt length and key length), with a new salt. Verifying a
// password against the result takes as long as against hash: a decoy for
// unknown user names made this way does not tell them apart by timing.
func HashLike(hash, password string) (string, error) {
	switch {
	case isBcrypt(hash):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrUnknownHash, err)
		}
		b, err := bcrypt.GenerateFromPassword([]byte(password), cost)
		return string(b), err
	case strings.HasPrefix(hash, "$argon2id$"):
		a, err := parseArgon(hash)
		if err != nil {
			return "", err
		}
		salt := make([]byte, len(a.salt))
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(password), salt, a.time, a.memory, a.threads, uint32(len(a.key)))
		enc := base64.RawStdEncoding
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.memory, a.time, a.threads,
			enc.EncodeToString(salt), enc.EncodeToString(key)), nil
	}
	return "", ErrUnknownHash
}

// DefaultMemoryBudget is the memory that a Verifier's verifications may
// use together when VerifierOptions.MemoryBudget is zero: two argon2id
// verifications with Hash's parameters (64 MiB each) at once.
const DefaultMemoryBudget = 128 << 20

// ErrBusy is returned by VerifyContext when the context ended while the
// verification waited for its share of the memory budget.
var ErrBusy = errors.New("passwd: too many verifications in progress")

// VerifierOptions configure a Verifier. Zero values take the defaults.
type VerifierOptions struct {
	// CacheSize is the most successful pairs remembered. Default 10000.
	CacheSize int
	// MemoryBudget bounds the memory, in bytes, that verifications
	// running at the same time may allocate together, each counted at
	// MemoryCost of its hash (one that alone exceeds the budget runs
	// alone). Verifications over the budget wait their turn, first come
	// first served. Default DefaultMemoryBudget.
	MemoryBudget int64
}

// Verifier verifies passwords with a bounded cache of successes and a
// memory budget for the verifications it runs. The zero value is not
// usable; call NewVerifier or NewVerifierWith.
type Verifier struct {
	key []byte
	max int
	sem *memSemaphore
	// verify is Verify; tests replace it to hold a verification open.
	verify func(hash, password string) error

	mu       sync.Mutex
	ok       map[[32]byte]struct{}
	inflight map[[32]byte]chan struct{}
}

// NewVerifier returns a Verifier caching up to max successful pairs, with
// the default memory budget.
func NewVerifier(max int) *Verifier {
	return NewVerifierWith(VerifierOptions{CacheSize: max})
}

// NewVerifierWith returns a Verifier configured by o.
func NewVerifierWith(o VerifierOptions) *Verifier {
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return &Verifier{key: key, max: o.CacheSize, sem: newMemSemaphore(o.MemoryBudget), verify: Verify,
		ok: map[[32]byte]struct{}{}, inflight: map[[32]byte]chan struct{}{}}
}

// Verify is VerifyContext without a deadline: it waits as long as the
// memory budget requires.
func (v *Verifier) Verify(hash, password string) error {
	return v.VerifyContext(context.Background(), hash, password)
}

// VerifyContext is Verify with the cache in front and the memory budget
// around the hash computation. A pair verified before answers at once.
// Concurrent checks of the same pair wait for the first one instead of
// each paying for the hash (many sessions of one sender reconnecting at
// once). A check that must compute the hash waits for its share of the
// budget until ctx ends, and then returns ErrBusy; ctx does not stop a
// computation that has begun.
func (v *Verifier) VerifyContext(ctx context.Context, hash, password string) error {
	k := v.cacheKey(hash, password)
	v.mu.Lock()
	if _, hit := v.ok[k]; hit {
		v.mu.Unlock()
		return nil
	}
	if ch, busy := v.inflight[k]; busy {
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ErrBusy
		}
		v.mu.Lock()
		_, hit := v.ok[k]
		v.mu.Unlock()
		if hit {
			return nil
		}
		return v.bounded(ctx, hash, password)
	}
	ch := make(chan struct{})
	v.inflight[k] = ch
	v.mu.Unlock()

	err := v.bounded(ctx, hash, password)

	v.mu.Lock()
	if err == nil {
		if len(v.ok) >= v.max {
			clear(v.ok)
		}
		v.ok[k] = struct{}{}
	}
	delete(v.inflight, k)
	close(ch)
	v.mu.Unlock()
	return err
}

func (v *Verifier) cacheKey(hash, password string) [32]byte {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// bounded runs one verification within the memory budget.
func (v *Verifier) bounded(ctx context.Context, hash, password string) error {
	n := MemoryCost(hash)
	if err := v.sem.acquire(ctx, n); err != nil {
		return ErrBusy
	}
	defer v.sem.release(n)
	err := v.verify(hash, password)
	if n >= collectAfter {
		// The check's memory is garbage now, but the collector would
		// only take it back once the heap has doubled: with checks
		// running back to back, the peak would be twice the budget.
		// Collect before giving the budget back, so the next check
		// reuses this memory. A cycle costs little next to the hash.
		runtime.GC()
	}
	return err
}

// collectAfter is the memory cost from which a check is followed by a
// garbage collection.
const collectAfter = 16 << 20

// memSemaphore is a weighted semaphore that serves waiters in arrival
// order, so a stream of small requests cannot starve a large one.
type memSemaphore struct {
	size int64

	mu      sync.Mutex
	used    int64
	waiters list.List // of *memWaiter
}

type memWaiter struct {
	n     int64
	ready chan struct{}
}

func newMemSemaphore(size int64) *memSemaphore { return &memSemaphore{size: size} }

func (s *memSemaphore) clamp(n int64) int64 { return min(max(n, 0), s.size) }

// acquire takes n bytes of the budget, waiting until they are free or
// ctx ends.
func (s *memSemaphore) acquire(ctx context.Context, n int64) error {
	n = s.clamp(n)
	s.mu.Lock()
	if s.waiters.Len() == 0 && s.used+n <= s.size {
		s.used += n
		s.mu.Unlock()
		return nil
	}
	w := &memWaiter{n: n, ready: make(chan struct{})}
	e := s.waiters.PushBack(w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-w.ready:
		// Granted while ctx ended: give it back.
		s.used -= n
	default:
		s.waiters.Remove(e)
	}
	s.grant()
	return ctx.Err()
}

func (s *memSemaphore) release(n int64) {
	s.mu.Lock()
	s.used -= s.clamp(n)
	s.grant()
	s.mu.Unlock()
}

// grant wakes the waiters at the front that now fit. Called with mu held.
func (s *memSemaphore) grant() {
	for e := s.waiters.Front(); e != nil; e = s.waiters.Front() {
		w := e.Value.(*memWaiter)
		if s.used+w.n > s.size {
			return
		}
		s.used += w.n
		s.waiters.Remove(e)
		close(w.ready)
	}
}
