// Package passwd hashes and verifies the passwords of outgoing users and the
// admin API tokens. Only hashes are ever stored: bcrypt ($2a$, $2b$, $2y$)
// or argon2id in the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
//
// # Caveats
//
// Verifying a hash is deliberately slow (tens of milliseconds). Verifier
// caches successful verifications in memory, keyed by a keyed hash of the
// pair, so that clients opening a connection per message do not pay it
// every time. Failures are never cached.
package passwd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
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
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
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

func verifyArgon(hash, password string) error {
	// $argon2id$v=19$m=65536,t=3,p=2$salt$key
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return fmt.Errorf("%w: argon2id hash has %d fields, want 6", ErrUnknownHash, len(parts))
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return fmt.Errorf("%w: argon2id version %q", ErrUnknownHash, parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return fmt.Errorf("%w: argon2id parameters %q", ErrUnknownHash, parts[3])
	}
	if m == 0 || m > 1<<22 || t == 0 || t > 64 || p == 0 {
		return fmt.Errorf("%w: argon2id parameters out of range", ErrUnknownHash)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("%w: argon2id salt: %v", ErrUnknownHash, err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 128 {
		return fmt.Errorf("%w: argon2id key", ErrUnknownHash)
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// Verifier verifies passwords with a bounded cache of successes. The zero
// value is not usable; call NewVerifier.
type Verifier struct {
	key []byte
	max int

	mu       sync.Mutex
	ok       map[[32]byte]struct{}
	inflight map[[32]byte]chan struct{}
}

// NewVerifier returns a Verifier caching up to max successful pairs.
func NewVerifier(max int) *Verifier {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return &Verifier{key: key, max: max, ok: map[[32]byte]struct{}{}, inflight: map[[32]byte]chan struct{}{}}
}

// Verify is Verify with the cache in front. Concurrent checks of the same
// pair wait for the first one instead of each paying for the hash (many
// sessions of one sender reconnecting at once).
func (v *Verifier) Verify(hash, password string) error {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	v.mu.Lock()
	if _, hit := v.ok[k]; hit {
		v.mu.Unlock()
		return nil
	}
	if ch, busy := v.inflight[k]; busy {
		v.mu.Unlock()
		<-ch
		v.mu.Lock()
		_, hit := v.ok[k]
		v.mu.Unlock()
		if hit {
			return nil
		}
		return Verify(hash, password)
	}
	ch := make(chan struct{})
	v.inflight[k] = ch
	v.mu.Unlock()

	err := Verify(hash, password)

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
