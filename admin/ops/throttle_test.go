package ops

import (
	"fmt"
	"testing"
	"time"
)

// The table keeps at most MaxKeys keys: a flood from many addresses
// forgets the oldest instead of growing memory.
func TestThrottleBounded(t *testing.T) {
	th := newThrottle(ThrottleOptions{Failures: 2, MaxKeys: 100})
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10_000 {
		th.fail(fmt.Sprintf("ip 10.0.%d.%d", i/256, i%256), now)
	}
	if n := th.len(); n != 100 {
		t.Fatalf("keys kept: %d, want 100", n)
	}
	// A key still failing stays: the least recently failed go first.
	th.fail("ip hot", now)
	for i := range 99 {
		th.fail(fmt.Sprintf("ip cold%d", i), now)
	}
	if d := th.fail("ip hot", now); d != time.Minute {
		t.Fatalf("second failure of a kept key: lock-out %v, want 1m", d)
	}
}

// Failures older than the window do not count; a lock-out doubles and
// stops at MaxLockout.
func TestThrottleWindowAndDoubling(t *testing.T) {
	th := newThrottle(ThrottleOptions{Failures: 2, Window: time.Minute, Lockout: time.Minute, MaxLockout: 3 * time.Minute})
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	th.fail("k", now)
	now = now.Add(2 * time.Minute)
	if d := th.fail("k", now); d != 0 {
		t.Fatalf("failure after the window: lock-out %v, want none", d)
	}
	now = now.Add(2 * time.Minute)
	var got []time.Duration
	for range 3 {
		th.fail("k", now)
		d := th.fail("k", now)
		got = append(got, d)
		if th.check("k", now) != d {
			t.Fatalf("check during the lock-out: %v, want %v", th.check("k", now), d)
		}
		now = now.Add(d)
		if th.check("k", now) != 0 {
			t.Fatal("still locked out at the lock-out's end")
		}
	}
	if fmt.Sprint(got) != "[1m0s 2m0s 3m0s]" {
		t.Fatalf("lock-outs %v, want [1m0s 2m0s 3m0s]", got)
	}
}

// FuzzCheckTOTP feeds arbitrary codes from the sign-in form to the TOTP
// check: it never panics and accepts only the codes of the three steps.
func FuzzCheckTOTP(f *testing.F) {
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Unix(1_700_000_000, 0)
	for _, s := range []string{"", "123456", " 12345 ", "abcdef", "1234567", "\x00\x00\x00\x00\x00\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		step, ok := checkTOTP(secret, code, now)
		if !ok {
			return
		}
		want := uint64(now.Unix() / 30)
		if step+1 < want || step > want+1 {
			t.Fatalf("code %q accepted at step %d, now is step %d", code, step, want)
		}
	})
}
