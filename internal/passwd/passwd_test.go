package passwd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHashVerify(t *testing.T) {
	a, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashBcrypt("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, pw string
		want           error
	}{
		{"argon2id ok", a, "s3cret", nil},
		{"argon2id wrong", a, "s3cret!", ErrMismatch},
		{"bcrypt ok", b, "s3cret", nil},
		{"bcrypt wrong", b, "S3cret", ErrMismatch},
		{"unknown", "md5:abc", "x", ErrUnknownHash},
		{"argon2id truncated", a[:20], "s3cret", ErrUnknownHash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.hash, tc.pw); !errors.Is(got, tc.want) {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVerifierCachesOnlySuccess(t *testing.T) {
	h, _ := HashBcrypt("pw")
	v := NewVerifier(2)
	for i := 0; i < 3; i++ {
		if err := v.Verify(h, "pw"); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := v.Verify(h, "nope"); !errors.Is(err, ErrMismatch) {
			t.Fatalf("round %d: wrong password got %v, want ErrMismatch", i, err)
		}
	}
	if got := len(v.ok); got != 1 {
		t.Errorf("cache holds %d entries, want 1", got)
	}
}

func TestVerifierConcurrentSamePair(t *testing.T) {
	h, _ := HashBcrypt("pw")
	v := NewVerifier(10)
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() { errs <- v.Verify(h, "pw") }()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if len(v.inflight) != 0 {
		t.Errorf("inflight not cleared: %d", len(v.inflight))
	}
}

func TestHashLikeKeepsAlgorithmAndCost(t *testing.T) {
	a, err := Hash("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, hash, want string }{
		{"argon2id", a, "argon2id m=65536,t=3,p=2 salt=16 key=32"},
		{"bcrypt", string(b), "bcrypt 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Kind(tc.hash); got != tc.want {
				t.Fatalf("Kind(original) = %q, want %q", got, tc.want)
			}
			d, err := HashLike(tc.hash, "decoy")
			if err != nil {
				t.Fatal(err)
			}
			if got := Kind(d); got != tc.want {
				t.Errorf("Kind(HashLike) = %q, want %q", got, tc.want)
			}
			if d == tc.hash {
				t.Errorf("HashLike returned the original hash")
			}
			if err := Verify(d, "decoy"); err != nil {
				t.Errorf("Verify(HashLike(decoy), decoy) = %v, want nil", err)
			}
			if err := Verify(d, "s3cret"); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify(HashLike(decoy), s3cret) = %v, want ErrMismatch", err)
			}
		})
	}
	if _, err := HashLike("md5:abc", "x"); !errors.Is(err, ErrUnknownHash) {
		t.Errorf("HashLike(unknown) = %v, want ErrUnknownHash", err)
	}
}

// argonHash is a well-formed argon2id hash with memory m KiB, for tests
// that never compute it.
func argonHash(m int) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=3,p=2$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U", m)
}

func TestMemoryCost(t *testing.T) {
	a := argonHash(65536)
	b := "$2a$10$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"
	for _, tc := range []struct {
		name, hash string
		want       int64
	}{
		{"argon2id 64 MiB", a, 64 << 20},
		{"bcrypt", b, bcryptMemory},
		{"unknown", "md5:abc", 0},
		{"argon2id malformed", "$argon2id$v=19$m=x$a$b", 0},
	} {
		if got := MemoryCost(tc.hash); got != tc.want {
			t.Errorf("%s: MemoryCost = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// blockingVerifier replaces v's hash computation with one that waits for
// release, and reports how many run at once.
type blockingVerifier struct {
	entered chan struct{}
	release chan struct{}

	mu        sync.Mutex
	now, peak int
}

func (b *blockingVerifier) install(v *Verifier) {
	v.verify = func(hash, password string) error {
		b.mu.Lock()
		b.now++
		b.peak = max(b.peak, b.now)
		b.mu.Unlock()
		b.entered <- struct{}{}
		<-b.release
		b.mu.Lock()
		b.now--
		b.mu.Unlock()
		return ErrMismatch
	}
}

func TestVerifierMemoryBudget(t *testing.T) {
	h := argonHash(65536)
	v := NewVerifierWith(VerifierOptions{MemoryBudget: 128 << 20}) // two 64 MiB verifications
	b := &blockingVerifier{entered: make(chan struct{}, 100), release: make(chan struct{})}
	b.install(v)

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- v.Verify(h, fmt.Sprint("wrong", i)) }()
	}
	<-b.entered
	<-b.entered
	// The budget is used up: a check that cannot wait gets ErrBusy.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.VerifyContext(ctx, h, "another"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyContext with the budget used up = %v, want ErrBusy", err)
	}
	// A cached success still answers at once.
	v.mu.Lock()
	v.ok[v.cacheKey(h, "cached")] = struct{}{}
	v.mu.Unlock()
	if err := v.VerifyContext(ctx, h, "cached"); err != nil {
		t.Errorf("cached pair with the budget used up = %v, want nil", err)
	}
	close(b.release)
	for range n {
		if err := <-errs; !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify = %v, want ErrMismatch", err)
		}
	}
	if b.peak != 2 {
		t.Errorf("at most %d verifications ran at once, want 2 (128 MiB budget, 64 MiB each)", b.peak)
	}
	if v.sem.used != 0 || v.sem.waiters.Len() != 0 {
		t.Errorf("budget not returned: used %d, %d waiting", v.sem.used, v.sem.waiters.Len())
	}
}

func TestVerifierOverBudgetHashRunsAlone(t *testing.T) {
	h := argonHash(65536)
	v := NewVerifierWith(VerifierOptions{MemoryBudget: 16 << 20}) // less than one 64 MiB hash
	b := &blockingVerifier{entered: make(chan struct{}, 100), release: make(chan struct{})}
	b.install(v)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() { errs <- v.Verify(h, fmt.Sprint("wrong", i)) }()
	}
	for range 3 {
		<-b.entered
		b.release <- struct{}{}
		if err := <-errs; !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify = %v, want ErrMismatch", err)
		}
	}
	if b.peak != 1 {
		t.Errorf("%d verifications ran at once, want 1", b.peak)
	}
}
