package txid

import (
	"testing"
	"time"
)

func TestMonotonicAndTime(t *testing.T) {
	var g Generator
	at := time.UnixMilli(1700000000123)
	prev := ""
	for i := 0; i < 1000; i++ {
		id := g.New(at)
		if len(id) != 26 {
			t.Fatalf("len(%q) = %d, want 26", id, len(id))
		}
		if id <= prev {
			t.Fatalf("id %q not greater than %q", id, prev)
		}
		prev = id
		if got := Time(id); !got.Equal(at) {
			t.Fatalf("Time(%q) = %v, want %v", id, got, at)
		}
	}
	// A clock going back keeps ids increasing.
	if id := g.New(at.Add(-MaxStepBack)); id <= prev {
		t.Errorf("after clock step back got %q <= %q", id, prev)
	}
	if later := g.New(at.Add(time.Millisecond)); later <= prev {
		t.Errorf("later id %q <= %q", later, prev)
	}
}

// TestOutOfRange checks that times outside the 48-bit range give ids in
// the ULID range, at its ends.
func TestOutOfRange(t *testing.T) {
	if id := new(Generator).New(time.UnixMilli(-5)); id[:10] != "0000000000" {
		t.Errorf("before the epoch: got %s", id)
	}
	if id := new(Generator).New(time.UnixMilli(1 << 50)); id[:10] != "7ZZZZZZZZZ" {
		t.Errorf("past the last millisecond: got %s", id)
	}
}

// TestNewTimeLine checks that a clock going back by more than MaxStepBack
// starts a new time line: its ids hold its time.
func TestNewTimeLine(t *testing.T) {
	var g Generator
	at := time.UnixMilli(1700000000123)
	g.New(at)
	back := at.Add(-MaxStepBack - time.Millisecond)
	if got := Time(g.New(back)); !got.Equal(back) {
		t.Errorf("after a step back of more than MaxStepBack: id time %v, want %v", got, back)
	}
}
