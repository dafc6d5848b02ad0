package identity

import (
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	ptr := func(n int) *int { return &n }
	dur := func(d time.Duration) *time.Duration { return &d }
	tests := []struct {
		name   string
		layers []*ThresholdOverrides
		check  func(Thresholds) string
	}{
		{"no layers keeps the base", nil, func(th Thresholds) string {
			if th != DefaultThresholds() {
				return "changed"
			}
			return ""
		}},
		{"nil layers are skipped", []*ThresholdOverrides{nil, nil}, func(th Thresholds) string {
			if th != DefaultThresholds() {
				return "changed"
			}
			return ""
		}},
		{"user overrides domain overrides global", []*ThresholdOverrides{
			{Count: [numCounters]*int{CounterSpam: ptr(10)}},
			{Count: [numCounters]*int{CounterSpam: ptr(20), CounterVirus: ptr(0)}},
			{Count: [numCounters]*int{CounterSpam: ptr(30)}},
		}, func(th Thresholds) string {
			if th[CounterSpam].Count != 30 || th[CounterVirus].Count != 0 || th[CounterPhishing].Count != DefaultPhishing {
				return "wrong counts"
			}
			return ""
		}},
		{"counter window beats layer window", []*ThresholdOverrides{
			{Window: dur(time.Hour), CounterWindow: [numCounters]*time.Duration{CounterMessages: dur(24 * time.Hour)}},
		}, func(th Thresholds) string {
			if th[CounterSpam].Window != time.Hour || th[CounterMessages].Window != 24*time.Hour {
				return "wrong windows"
			}
			return ""
		}},
		{"later layer window beats earlier counter window", []*ThresholdOverrides{
			{CounterWindow: [numCounters]*time.Duration{CounterSpam: dur(time.Hour)}},
			{Window: dur(5 * time.Minute)},
		}, func(th Thresholds) string {
			if th[CounterSpam].Window != 5*time.Minute {
				return "wrong window"
			}
			return ""
		}},
		{"clamped", []*ThresholdOverrides{
			{Window: dur(30 * 24 * time.Hour), Count: [numCounters]*int{CounterSpam: ptr(-1), CounterVirus: ptr(1 << 30), CounterMessages: ptr(1 << 30)}},
		}, func(th Thresholds) string {
			if th[CounterSpam].Count != 0 || th[CounterVirus].Count != MaxEventThreshold || th[CounterMessages].Count != MaxVolumeThreshold || th[CounterSpam].Window != MaxWindow {
				return "not clamped"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(DefaultThresholds(), tc.layers...)
			if msg := tc.check(got); msg != "" {
				t.Errorf("got %+v: %s", got, msg)
			}
		})
	}
}

func TestCounterNames(t *testing.T) {
	var got []string
	for _, c := range Counters() {
		got = append(got, c.String())
	}
	want := "spam phishing virus complaints messages recipients suspect refused refused_policy refused_unknown refused_other refused_after_data"
	if s := join(got); s != want {
		t.Errorf("got %q, want %q", s, want)
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
