package filter

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeEngine returns a fixed verdict or error, or hangs.
type fakeEngine struct {
	name string
	v    Verdict
	err  error
	// hang blocks until the context ends (a well-behaved slow engine).
	hang bool
	// stuck blocks until release is closed, ignoring the context.
	stuck   bool
	release chan struct{}
	panics  bool
	// sleep delays the answer, whatever the context.
	sleep time.Duration
	calls atomic.Int32
}

func (f *fakeEngine) Name() string { return f.name }

// localEngine is a fakeEngine that Classify runs in its own goroutine,
// as it runs the built-in engine.
type localEngine struct{ *fakeEngine }

func (localEngine) inProcess() {}

func (f *fakeEngine) Scan(ctx context.Context, m *Message) (Verdict, error) {
	f.calls.Add(1)
	switch {
	case f.panics:
		panic("boom")
	case f.hang:
		<-ctx.Done()
		return Verdict{}, ctx.Err()
	case f.stuck:
		<-f.release
		return Verdict{Class: Virus}, nil
	case f.sleep > 0:
		time.Sleep(f.sleep)
	}
	return f.v, f.err
}

func newTestClassifier(t *testing.T, reg prometheus.Registerer, log *slog.Logger, specs ...EngineSpec) *Classifier {
	t.Helper()
	c, err := New(Options{Engines: specs, Registerer: reg, Logger: log})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func cleanMessage(t testing.TB) *Message {
	return mustParse(t, buildMessage(stdHeaders, textPart("hello")))
}

func TestClassifyMerge(t *testing.T) {
	errDown := errors.New("connection refused")
	spam := &fakeEngine{name: "a", v: Verdict{Class: Spam, Score: 7, Reasons: []string{"a:X(7)"}}}
	virus := &fakeEngine{name: "b", v: Verdict{Class: Virus, Score: 100, Reasons: []string{"b:Y(100)"}}}
	clean := &fakeEngine{name: "c", v: Verdict{Score: 1, Reasons: []string{"c:Z(1)"}}}
	down := &fakeEngine{name: "down", err: errDown}
	phish := &fakeEngine{name: "p", v: Verdict{Class: Phishing, Score: 3, Reasons: []string{"p:W(3)"}}}
	for _, tc := range []struct {
		name        string
		specs       []EngineSpec
		wantClass   Class
		wantScore   float64
		wantReasons []string
		wantErr     error
	}{
		{"most severe wins", []EngineSpec{{Engine: spam}, {Engine: virus}, {Engine: clean}}, Virus, 100, []string{"a:X(7)", "b:Y(100)", "c:Z(1)"}, nil},
		{"phishing beats spam", []EngineSpec{{Engine: spam}, {Engine: phish}}, Phishing, 3, []string{"a:X(7)", "p:W(3)"}, nil},
		{"all clean", []EngineSpec{{Engine: clean}}, Clean, 1, []string{"c:Z(1)"}, nil},
		{"failed engine tempfails", []EngineSpec{{Engine: clean}, {Engine: down, OnError: OnErrorTempfail}}, Clean, 1, []string{"c:Z(1)"}, ErrTempfail},
		{"failed engine accepted", []EngineSpec{{Engine: clean}, {Engine: down, OnError: OnErrorAccept}}, Clean, 1, []string{"c:Z(1)", "down:UNAVAILABLE(0)"}, nil},
		{"refusal beats a failed engine", []EngineSpec{{Engine: spam}, {Engine: down, OnError: OnErrorTempfail}}, Spam, 7, []string{"a:X(7)"}, nil},
		{"engine tempfail ignores accept", []EngineSpec{{Engine: &fakeEngine{name: "big", err: ErrTempfail}, OnError: OnErrorAccept}}, Clean, 0, nil, ErrTempfail},
		{"panicking engine is a failure", []EngineSpec{{Engine: &fakeEngine{name: "bad", panics: true}}}, Clean, 0, nil, ErrUnavailable},
	} {
		// Each case runs with the engines run apart, and again with
		// the first engine run in process.
		for _, local := range []bool{false, true} {
			specs := slices.Clone(tc.specs)
			name := tc.name
			if local {
				specs[0].Engine = localEngine{specs[0].Engine.(*fakeEngine)}
				name += "/first in process"
			}
			t.Run(name, func(t *testing.T) {
				c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), specs...)
				v, err := c.Classify(context.Background(), cleanMessage(t))
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
					t.Errorf("got error %v, want %v", err, tc.wantErr)
				}
				if v.Class != tc.wantClass || v.Score != tc.wantScore || !slices.Equal(v.Reasons, tc.wantReasons) {
					t.Errorf("got %v %v %q, want %v %v %q", v.Class, v.Score, v.Reasons, tc.wantClass, tc.wantScore, tc.wantReasons)
				}
			})
		}
	}
}

func TestClassifyAcceptLogsAndCounts(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	c := newTestClassifier(t, reg, slog.New(slog.NewTextHandler(&logs, nil)),
		EngineSpec{Engine: &fakeEngine{name: "clamd", err: ErrUnavailable}, OnError: OnErrorAccept},
		EngineSpec{Engine: &fakeEngine{name: "rspamd", err: ErrUnavailable}, OnError: OnErrorTempfail},
		EngineSpec{Engine: &fakeEngine{name: "builtin"}},
	)
	m := cleanMessage(t)
	m.TransactionID = "01TESTID"
	if _, err := c.Classify(context.Background(), m); !errors.Is(err, ErrTempfail) {
		t.Fatalf("got %v, want ErrTempfail", err)
	}
	for _, want := range []string{"level=WARN", "engine=clamd", "on_error: accept", "log_id=01TESTID", "on_error: tempfail"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("got log %q, want it to contain %q", logs.String(), want)
		}
	}
	const want = `
# HELP outguard_scanner_errors_total Classification engine failures (unreachable, timed out, bad answer), per engine.
# TYPE outguard_scanner_errors_total counter
outguard_scanner_errors_total{engine="builtin"} 0
outguard_scanner_errors_total{engine="clamd"} 1
outguard_scanner_errors_total{engine="rspamd"} 1
# HELP outguard_verdicts_total Classifications by outcome: clean, spam, phishing, virus, or tempfail when a failed engine deferred the message.
# TYPE outguard_verdicts_total counter
outguard_verdicts_total{verdict="clean"} 0
outguard_verdicts_total{verdict="phishing"} 0
outguard_verdicts_total{verdict="spam"} 0
outguard_verdicts_total{verdict="tempfail"} 1
outguard_verdicts_total{verdict="virus"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outguard_scanner_errors_total", "outguard_verdicts_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c.metrics.duration); n != 4 {
		t.Errorf("got %d duration series, want 4 (three engines and all)", n)
	}
}

func TestClassifyTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		engine *fakeEngine
	}{
		{"engine honours its context", &fakeEngine{name: "slow", hang: true}},
		{"engine ignores its context", &fakeEngine{name: "stuck", stuck: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if tc.engine.stuck {
					// Made inside the bubble, so that waiting on it counts as
					// durably blocked and the fake clock advances.
					tc.engine.release = make(chan struct{})
				}
				c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler),
					EngineSpec{Engine: tc.engine, Timeout: 3 * time.Second},
					EngineSpec{Engine: &fakeEngine{name: "fast"}})
				start := time.Now()
				v, err := c.Classify(context.Background(), cleanMessage(t))
				if !errors.Is(err, ErrTempfail) || !errors.Is(err, ErrTimeout) {
					t.Errorf("got %v, want ErrTempfail wrapping ErrTimeout", err)
				}
				if v.Class != Clean {
					t.Errorf("got %v, want clean (a late answer must not count)", v.Class)
				}
				if got := time.Since(start); got != 3*time.Second {
					t.Errorf("got Classify returning after %v, want exactly the 3s timeout", got)
				}
				if tc.engine.release != nil {
					close(tc.engine.release)
				}
			})
		})
	}
}

// TestClassifyTimeoutInProcess: an engine run in process that ends after
// its timeout, honouring its context or not, is a timeout, and its late
// verdict does not count.
func TestClassifyTimeoutInProcess(t *testing.T) {
	for _, e := range []*fakeEngine{
		{name: "slow", hang: true},
		{name: "late", sleep: 5 * time.Second, v: Verdict{Class: Spam, Score: 9}},
	} {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler),
					EngineSpec{Engine: localEngine{e}, Timeout: 3 * time.Second})
				v, err := c.Classify(context.Background(), cleanMessage(t))
				if !errors.Is(err, ErrTempfail) || !errors.Is(err, ErrTimeout) {
					t.Errorf("got %v, want ErrTempfail wrapping ErrTimeout", err)
				}
				if v.Class != Clean {
					t.Errorf("got %v, want clean (a late answer must not count)", v.Class)
				}
			})
		})
	}
}

func TestNewErrors(t *testing.T) {
	e := &fakeEngine{name: "x"}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no engines", Options{}, "no engine"},
		{"nil engine", Options{Engines: []EngineSpec{{}}}, "nil"},
		{"duplicate", Options{Engines: []EngineSpec{{Engine: e}, {Engine: e}}}, "twice"},
		{"negative timeout", Options{Engines: []EngineSpec{{Engine: e, Timeout: -1}}}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseEnums(t *testing.T) {
	for _, s := range []string{"clean", "spam", "phishing", "virus"} {
		c, err := ParseClass(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseClass(%q): got %v %v", s, c, err)
		}
	}
	if _, err := ParseClass("ham"); err == nil {
		t.Errorf("ParseClass(ham): got no error")
	}
	if o, err := ParseOnError("accept"); err != nil || o != OnErrorAccept {
		t.Errorf("ParseOnError(accept): got %v %v", o, err)
	}
	if _, err := ParseOnError("ignore"); err == nil {
		t.Errorf("ParseOnError(ignore): got no error")
	}
	if o, err := ParseOverLimit("tempfail"); err != nil || o != OverLimitTempfail {
		t.Errorf("ParseOverLimit(tempfail): got %v %v", o, err)
	}
	if got := Reason("builtin", "GTUBE", 1000); got != "builtin:GTUBE(1000)" {
		t.Errorf("got %q, want builtin:GTUBE(1000)", got)
	}
	if got := Reason("rspamd", "X", -0.5); got != "rspamd:X(-0.5)" {
		t.Errorf("got %q, want rspamd:X(-0.5)", got)
	}
}
