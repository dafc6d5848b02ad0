package passwd

import (
	"errors"
	"testing"
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
