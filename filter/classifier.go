package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrTempfail is wrapped by the error Classify returns when an engine whose
// OnError is OnErrorTempfail failed: the message could not be judged and
// should be deferred (451 4.7.1), not accepted.
var ErrTempfail = errors.New("filter: a scanner failed; try again later")

// ErrTimeout is wrapped by an engine error when the engine did not answer
// within its timeout.
var ErrTimeout = errors.New("filter: scanner timed out")

// ErrUnavailable is wrapped by an engine error when the engine's service
// could not be reached or gave an answer that could not be understood.
var ErrUnavailable = errors.New("filter: scanner unavailable")

// Engine judges one message. Scan must honour ctx's deadline and
// cancellation, must not modify m, and may be called concurrently.
// A returned error means the engine could not judge the message; it is
// then handled by the engine's OnError policy.
type Engine interface {
	// Name is the engine's short lower-case name, used in reasons, logs
	// and metric labels ("builtin", "rspamd", "clamd").
	Name() string
	// Scan returns the engine's verdict for m.
	Scan(ctx context.Context, m *Message) (Verdict, error)
}

// Pinger is implemented by engines that talk to a service, for readiness
// checks.
type Pinger interface {
	// Ping returns nil when the service answers.
	Ping(ctx context.Context) error
}

// OnError says what a failed engine does to the message.
type OnError int

const (
	// OnErrorTempfail defers the message: Classify returns ErrTempfail.
	OnErrorTempfail OnError = iota
	// OnErrorAccept logs a warning, counts the error and lets the other
	// engines decide.
	OnErrorAccept
)

// String returns "tempfail" or "accept".
func (o OnError) String() string {
	if o == OnErrorAccept {
		return "accept"
	}
	return "tempfail"
}

// ParseOnError is the inverse of OnError.String.
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "tempfail", "":
		return OnErrorTempfail, nil
	case "accept":
		return OnErrorAccept, nil
	}
	return OnErrorTempfail, fmt.Errorf("unknown on_error %q: use tempfail or accept", s)
}

// DefaultTimeout bounds an engine whose EngineSpec.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// EngineSpec is one engine with its failure policy.
type EngineSpec struct {
	// Engine does the work.
	Engine Engine
	// Timeout bounds one Scan; zero means DefaultTimeout.
	Timeout time.Duration
	// OnError says what happens when Scan fails or times out.
	OnError OnError
}

// Options configure a Classifier.
type Options struct {
	// Engines run concurrently on every message (the built-in engine in
	// the caller's goroutine, the others each in their own). At least one
	// is required.
	// Engine names must be distinct.
	Engines []EngineSpec
	// Limits bound ParseMessage in ClassifyFile; zero fields take
	// DefaultLimits.
	Limits Limits
	// Logger receives warnings about failed engines; nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil means they are not registered.
	// Ignored when Metrics is set.
	Registerer prometheus.Registerer
	// Metrics, when set, are used instead of registering new ones: pass
	// the same Metrics to classifiers rebuilt on reload.
	Metrics *Metrics
	// Now is the clock used to time engines; nil means time.Now.
	Now func() time.Time
}

// Classifier runs the configured engines on messages. It is safe for
// concurrent use.
type Classifier struct {
	engines []EngineSpec
	limits  Limits
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

// New checks opts and returns a Classifier.
func New(opts Options) (*Classifier, error) {
	if len(opts.Engines) == 0 {
		return nil, errors.New("filter: no engine configured")
	}
	names := make([]string, 0, len(opts.Engines))
	seen := map[string]bool{}
	for i, s := range opts.Engines {
		if s.Engine == nil {
			return nil, fmt.Errorf("filter: engine %d is nil", i)
		}
		n := s.Engine.Name()
		if seen[n] {
			return nil, fmt.Errorf("filter: engine %q configured twice", n)
		}
		if s.Timeout < 0 {
			return nil, fmt.Errorf("filter: engine %q: negative timeout", n)
		}
		seen[n] = true
		names = append(names, n)
	}
	c := &Classifier{
		engines: append([]EngineSpec(nil), opts.Engines...),
		limits:  opts.Limits.withDefaults(),
		log:     opts.Logger,
		now:     opts.Now,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.metrics = opts.Metrics
	if c.metrics == nil {
		reg := opts.Registerer
		if reg == nil {
			reg = prometheus.NewRegistry() // unexported sink: metrics still work
		}
		c.metrics = NewMetrics(reg)
	}
	c.metrics.touch(names)
	return c, nil
}

// Limits returns the parsing limits in force (defaults filled in).
func (c *Classifier) Limits() Limits { return c.limits }

// Engines returns the configured engines, for readiness checks.
func (c *Classifier) Engines() []EngineSpec { return append([]EngineSpec(nil), c.engines...) }

type engineResult struct {
	i   int
	v   Verdict
	err error
}

// Classify runs every engine on m at once and returns the merged verdict:
// the most severe class wins and the reasons of all engines are kept.
// Verdict.Gaps holds m.Gaps and the gaps engines reported: a clean verdict
// with gaps means "clean as far as the engines could see", and the caller
// applies its UnscannablePolicy.
//
// When an engine fails, its OnError decides: with OnErrorAccept the failure
// is logged, counted and noted in the reasons as "engine:UNAVAILABLE(0)";
// with OnErrorTempfail Classify returns an error wrapping ErrTempfail,
// unless the engines that did answer already found the message spam,
// phishing or virus, in which case that verdict is returned with a nil
// error (the message is refused either way, and a deferral would only make
// the sender try again). When the error is non-nil the returned Verdict
// holds what the answering engines found and is Clean.
//
// Classify returns no later than the largest engine timeout, even if an
// engine ignores its context. If ctx ends first, Classify returns ctx's
// error wrapped in ErrTempfail.
func (c *Classifier) Classify(ctx context.Context, m *Message) (Verdict, error) {
	start := c.now()
	results := make(chan engineResult, len(c.engines))
	var local []int
	for i, s := range c.engines {
		if _, ok := s.Engine.(inProcess); ok {
			local = append(local, i)
			continue
		}
		go c.runEngine(ctx, i, s, m, results)
	}
	// The in-process engines run here, while the others wait on their
	// servers.
	for _, i := range local {
		results <- c.runLocal(ctx, i, c.engines[i], m)
	}
	verdicts := make([]Verdict, len(c.engines))
	var failed []error
	for range c.engines {
		r := <-results
		s := c.engines[r.i]
		name := s.Engine.Name()
		if r.err == nil {
			verdicts[r.i] = r.v
			continue
		}
		c.metrics.errors.WithLabelValues(name).Inc()
		if s.OnError == OnErrorAccept && ctx.Err() == nil && !errors.Is(r.err, ErrTempfail) {
			c.log.Warn("scanner failed; accepting as configured (on_error: accept)",
				"engine", name, "err", r.err, "log_id", m.TransactionID)
			verdicts[r.i] = Verdict{Reasons: []string{Reason(name, "UNAVAILABLE", 0)}}
			continue
		}
		failed = append(failed, fmt.Errorf("%s: %w", name, r.err))
	}
	v := merge(verdicts)
	for _, g := range m.Gaps {
		v.Gaps = addGap(v.Gaps, g)
	}
	for _, l := range PartialLimits(v.Gaps) {
		c.metrics.gaps.WithLabelValues(l).Inc()
	}
	c.metrics.duration.WithLabelValues("all").Observe(c.now().Sub(start).Seconds())
	if len(failed) > 0 && v.Class == Clean {
		c.metrics.verdicts.WithLabelValues(verdictTempfail).Inc()
		err := errors.Join(failed...)
		c.log.Warn("scanner failed; deferring the message (on_error: tempfail)", "err", err, "log_id", m.TransactionID)
		if errors.Is(err, ErrTempfail) {
			return v, err
		}
		return v, fmt.Errorf("%w: %w", ErrTempfail, err)
	}
	c.metrics.verdicts.WithLabelValues(v.Class.String()).Inc()
	return v, nil
}

// runEngine runs one engine under its timeout and sends exactly one result.
// The engine runs in its own goroutine so that one ignoring its context
// cannot hold Classify past the deadline; its late answer is dropped.
func (c *Classifier) runEngine(ctx context.Context, i int, s EngineSpec, m *Message, out chan<- engineResult) {
	ctx, cancel, timeout := engineContext(ctx, s)
	defer cancel()
	start := c.now()
	done := make(chan engineResult, 1)
	go func() { done <- scanEngine(ctx, i, s, m) }()
	var r engineResult
	select {
	case r = <-done:
	case <-ctx.Done():
		// Give a well-behaved engine the chance to report its own error
		// first; otherwise report the deadline.
		select {
		case r = <-done:
		default:
			r = engineResult{i: i, err: ctx.Err()}
		}
	}
	out <- c.settle(ctx, r, s.Engine.Name(), timeout, start)
}

// inProcess marks the engines that compute their verdict in this process,
// with bounded work (the built-in engine): Classify runs them in its own
// goroutine, without the goroutine pair that keeps a server's slow answer
// from holding it.
type inProcess interface{ inProcess() }

func (*Builtin) inProcess() {}

// runLocal runs an in-process engine under its timeout, as runEngine
// does: a panic is an ErrUnavailable, and an answer after the deadline a
// timeout.
func (c *Classifier) runLocal(ctx context.Context, i int, s EngineSpec, m *Message) engineResult {
	ctx, cancel, timeout := engineContext(ctx, s)
	defer cancel()
	start := c.now()
	return c.settle(ctx, scanEngine(ctx, i, s, m), s.Engine.Name(), timeout, start)
}

// engineContext bounds one scan by the engine's timeout.
func engineContext(ctx context.Context, s EngineSpec) (context.Context, context.CancelFunc, time.Duration) {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, cancel, timeout
}

// scanEngine runs one engine's Scan; a panic is an ErrUnavailable.
func scanEngine(ctx context.Context, i int, s EngineSpec, m *Message) (r engineResult) {
	defer func() {
		if p := recover(); p != nil {
			r = engineResult{i: i, err: fmt.Errorf("%w: engine panicked: %v", ErrUnavailable, p)}
		}
	}()
	v, err := s.Engine.Scan(ctx, m)
	return engineResult{i: i, v: v, err: err}
}

// settle turns an engine's result into the one Classify counts: an
// error of the deadline names the timeout, and an answer that came after
// the deadline does not count.
func (c *Classifier) settle(ctx context.Context, r engineResult, name string, timeout time.Duration, start time.Time) engineResult {
	i := r.i
	if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) && !errors.Is(r.err, ErrTimeout) {
		r.err = fmt.Errorf("%w after %v: %w", ErrTimeout, timeout, r.err)
	}
	if r.err == nil && ctx.Err() != nil {
		// An answer that arrived after the deadline does not count.
		r = engineResult{i: i, err: fmt.Errorf("%w after %v", ErrTimeout, timeout)}
	}
	c.metrics.duration.WithLabelValues(name).Observe(c.now().Sub(start).Seconds())
	return r
}
