package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentage(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor, want int64
	}{
		{0, 256 * mb, MaxPercent},
		{1 * mb, 256 * mb, MaxPercent},
		{32 * mb, 256 * mb, 700},
		{64 * mb, 256 * mb, 300},
		{100 * mb, 256 * mb, 156},
		{128 * mb, 256 * mb, 100},
		{500 * mb, 256 * mb, 100},
	} {
		if got := Percentage(c.live, c.floor); got != c.want {
			t.Errorf("Percentage(%d MB, %d MB) = %d, want %d", c.live/mb, c.floor/mb, got, c.want)
		}
	}
}

// sink keeps the test's live heap reachable.
var sink [][]byte

func TestTunerFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const mb = 1 << 20
	tu := Start(256 * mb)
	if tu == nil {
		t.Fatal("Start returned nil without GOGC")
	}
	defer tu.Stop()
	// A small live heap: the collector may let garbage grow.
	waitPercent(t, tu, func(p int) bool { return p > 300 }, "over 300 with a small live heap")
	// A live heap of 200 MB: twice it is over the floor, back to 100.
	for range 200 {
		sink = append(sink, make([]byte, mb))
	}
	waitPercent(t, tu, func(p int) bool { return p == 100 }, "100 with 200 MB live")
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("runtime's GC percent is %d, want the tuner's 100", got)
	}
	sink = nil
	waitPercent(t, tu, func(p int) bool { return p > 300 }, "over 300 once the heap is freed")
	tu.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after Stop the GC percent is %d, want 100", got)
	}
}

func waitPercent(t *testing.T, tu *Tuner, ok func(int) bool, what string) {
	t.Helper()
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if ok(tu.Percent()) {
			return
		}
	}
	t.Fatalf("GC percent %d, want %s", tu.Percent(), what)
}

func TestGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "50")
	if tu := Start(256 << 20); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned with GOGC set")
	}
	var nilTuner *Tuner
	nilTuner.Stop()
	if nilTuner.Percent() != 100 {
		t.Fatal("a nil Tuner's percent is not 100")
	}
}
