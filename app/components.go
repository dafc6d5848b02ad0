package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/feedback"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// startComponents opens the stores on the database and builds the
// pipeline. The order matters for Stop: everything that writes to the
// database is stopped before it closes.
func (a *App) startComponents(cfg *config.Config) error {
	n, err := a.newNotifier(cfg)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	a.notifier = n
	var onEvent func(identity.Event)
	var onExpire func(arf.Entry)
	if n != nil {
		onEvent, onExpire = n.OnIdentityEvent, n.OnOutboxExpiry
		n.Start()
	}
	idOpts := identity.Options{
		OnEvent:       onEvent,
		Registerer:    a.reg,
		Logger:        a.log.With("component", "identity"),
		Now:           a.opts.Now,
		FlushInterval: cfg.Identity.FlushInterval.D(),
	}
	var ids *identity.Manager
	if a.pg != nil {
		// Locks and windows are the fleet's (docs/config-store.md).
		idOpts.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"node": cfg.NodeName}, a.reg)
		ids, err = identity.OpenPostgres(a.pg, cfg.NodeName, idOpts)
	} else {
		ids, err = identity.Open(a.db, idOpts)
	}
	if err != nil {
		return fmt.Errorf("opening locks: %w", err)
	}
	a.ids = ids

	qopts := quarantine.Options{
		LogRetention:        cfg.Store.LogRetention.D(),
		QuarantineRetention: cfg.Store.QuarantineRetention.D(),
		SweepInterval:       cfg.Store.SweepInterval.D(),
		QueueSize:           cfg.Store.QueueSize,
		MaxBatch:            cfg.Store.MaxBatch,
		Deliver: func(ctx context.Context, from string, rcpts []string, raw []byte) error {
			if id := quarantine.Releasing(ctx); id != "" {
				// The capture next hop files it as <log id>.released.eml.
				ctx = smtpd.WithDeliveryName(ctx, id+".released")
			}
			return smtpd.Deliver(ctx, a.nextHop, from, rcpts, raw)
		},
		ReleaseTrace: func(rec *quarantine.Record, at time.Time) string {
			return releaseReceived(cfg.Hostname, rec, at)
		},
		Registerer: a.reg,
		Logger:     a.log.With("component", "store"),
		Now:        a.opts.Now,
		Node:       cfg.NodeName,
	}
	var store *quarantine.Store
	if a.pg != nil {
		// The fleet's log and quarantine (docs/config-store.md), with a
		// spool in the node's own file for the records of relayed mail
		// while PostgreSQL is out of reach.
		qopts.Spool, qopts.SpoolMax = a.db, cfg.Store.Postgres.SpoolMaxRecords
		store, err = quarantine.NewPostgres(a.pg, qopts)
	} else {
		store, err = quarantine.New(a.db, qopts)
	}
	if err != nil {
		return fmt.Errorf("opening message log: %w", err)
	}
	store.Start()
	a.store = store

	a.filterMetrics = filter.NewMetrics(a.reg)
	if err := a.openLearner(cfg); err != nil {
		return err
	}
	disk := newDataDisk(filepath.Dir(cfg.StorePath()), cfg.Store.MinFreeSpace, a.opts.Statfs, a.reg, a.log.With("component", "store"))
	now := a.opts.Now
	if now == nil {
		now = time.Now
	}
	var detStore detectionStore
	if a.pg != nil {
		// store.backend postgres: the fleet's shared tables.
		detStore = &pgDetectionStore{pool: a.pg, node: cfg.NodeName}
	} else if detStore, err = newBoltDetectionStore(a.db); err != nil {
		return fmt.Errorf("detection: %w", err)
	}
	det, err := newDetection(cfg, detStore, a.log.With("component", "detection"), now)
	if err != nil {
		return err
	}
	a.detect, a.campaigns = det, det.camp
	if a.pg != nil {
		det.shareCampaigns(a.pg, cfg.NodeName)
	}
	p := &pipeline{log: a.log, ids: ids, store: store, now: a.opts.Now, learner: a.learner, detect: det,
		learnRefusals: cfg.Filter.Engines.Builtin.ContentModel.LearnFromRefusals, disk: disk}
	a.pipeline = p
	if det.merger != nil {
		det.setFleetLock(p.baselineFleetLock)
	}
	if cfg.ARF.IsEnabled() {
		ob, err := arf.NewOutbox(arf.OutboxOptions{
			DB:           a.db,
			Pool:         a.pg,
			Node:         cfg.NodeName,
			Send:         a.arfSend(cfg),
			RetryInitial: cfg.ARF.Retry.Initial.D(),
			RetryMax:     cfg.ARF.Retry.Max.D(),
			MaxAge:       cfg.ARF.MaxAge.D(),
			SendTimeout:  cfg.ARF.Relay.Timeout.D(),
			Now:          a.opts.Now,
			Logger:       a.log.With("component", "arf"),
			Registerer:   a.reg,
			OnExpire:     onExpire,
		})
		if err != nil {
			return fmt.Errorf("opening ARF outbox: %w", err)
		}
		ob.Start()
		a.outbox = ob
		p.outbox = ob
	}
	fi, err := a.newFeedbackIntake(p)
	if err != nil {
		return err
	}
	p.feedback = fi
	if err := a.applyPolicy(cfg); err != nil {
		return err
	}
	fi.Start()
	return nil
}

// applyPolicy compiles the parts of cfg that reload swaps in: per-user
// policies, the classifier, the ARF generator and feedback settings.
func (a *App) applyPolicy(cfg *config.Config) error {
	st, err := buildPolicyState(cfg)
	if err != nil {
		return err
	}
	cl, err := buildClassifier(cfg, a.filterMetrics, a.learner, a.log)
	if err != nil {
		return err
	}
	gen, err := arf.NewGenerator(arf.GeneratorOptions{
		From:             cfg.ARF.From,
		To:               nonEmpty(cfg.ARF.AbuseAddress),
		ReportingMTA:     cfg.Hostname,
		Version:          a.opts.Version,
		MaxOriginalBytes: cfg.ARF.MaxOriginalBytes,
		Now:              a.opts.Now,
	})
	if err != nil {
		return fmt.Errorf("ARF generator: %w", err)
	}
	a.pipeline.disk.setReserve(cfg.Store.MinFreeSpace)
	a.pipeline.state.Store(st)
	a.pipeline.classifier.Store(cl)
	if n := cfg.Filter.Limits.MaxConcurrent; a.pipeline.slots.Load() == nil || cap(a.pipeline.slots.Load().slots) != n {
		if a.slotMetrics == nil {
			a.slotMetrics = newSlotMetrics(a.reg)
		}
		a.pipeline.slots.Store(newClassifySlots(n, a.slotMetrics))
	}
	a.pipeline.generator.Store(gen)
	trace := cfg.Identity.TraceHeader
	if trace == "" {
		trace = "X-Outguard-Trace"
	}
	cm := cfg.Filter.Engines.Builtin.ContentModel
	a.pipeline.feedback.Configure(feedback.Settings{
		IdentityHeader: cfg.ARF.IdentityHeader, IdentityOccurrence: feedbackOccurrence(cfg),
		TraceHeader: trace, MaxBytes: cfg.ARF.ParseMaxBytes,
		Retention: cfg.ARF.FeedbackRetention.D(), Reporters: cfg.ARF.FeedbackReporters(),
		Learn: cm.LearnEnabled() && *cm.LearnFromFeedback,
	})
	return nil
}

// feedbackOccurrence is the occurrence of arf.identity_header that names
// the identity in a complained-about message: the one every identity rule
// reading that header uses, or "only" when they disagree or none reads it
// (docs/config-arf.md). "only" names a value only when all occurrences
// carry it, so whichever occurrence a rule took, it is that value.
func feedbackOccurrence(cfg *config.Config) arf.Occurrence {
	var occ string
	seen := false
	check := func(rules []config.IdentityRule) {
		for _, r := range rules {
			if !strings.EqualFold(r.Header, cfg.ARF.IdentityHeader) {
				continue
			}
			o := r.Occurrence
			if o == "" {
				o = string(arf.OccurrenceOnly)
			}
			if seen && o != occ {
				o = string(arf.OccurrenceOnly)
			}
			occ, seen = o, true
		}
	}
	for _, d := range cfg.Domains {
		check(d.IdentityRules)
		for _, u := range d.Users {
			check(u.IdentityRules)
		}
	}
	o, err := arf.ParseOccurrence(occ)
	if err != nil {
		return arf.OccurrenceOnly
	}
	return o
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// arfSend delivers reports through the configured report relay, or by
// default through the next hop (its connection pool, or the trial capture
// folder). A 5xx refusal is permanent; anything else is retried.
func (a *App) arfSend(cfg *config.Config) arf.SendFunc {
	r := cfg.ARF.Relay
	if r.Address != "" {
		s := &arf.SMTPSender{Address: r.Address, TLS: r.TLS, Username: r.Username, Password: r.Password, Helo: cfg.Hostname}
		if r.ServerName != "" || r.InsecureSkipVerify {
			name := r.ServerName
			if name == "" {
				name, _, _ = net.SplitHostPort(r.Address)
			}
			s.TLSConfig = &tls.Config{ServerName: name, InsecureSkipVerify: r.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		}
		return s.Send
	}
	return func(ctx context.Context, from string, to []string, raw []byte) error {
		if id := arf.ReportID(ctx); id != "" {
			// The capture next hop files it as <log id>.arf.eml.
			ctx = smtpd.WithDeliveryName(ctx, id+".arf")
		}
		err := smtpd.Deliver(ctx, a.nextHop, from, to, raw)
		var serr *smtp.SMTPError
		if errors.As(err, &serr) && serr.Code/100 == 5 {
			return fmt.Errorf("%w: %v", arf.ErrPermanent, err)
		}
		return err
	}
}

func (a *App) isFeedbackAddress(addr string) bool {
	for _, f := range a.pipeline.state.Load().feedbackAddrs {
		if strings.EqualFold(f, addr) {
			return true
		}
	}
	return false
}

// stopComponents stops the writers in dependency order; safe to call on a
// partly started App.
func (a *App) stopComponents() {
	if a.outbox != nil {
		a.outbox.Stop()
	}
	if a.pipeline != nil && a.pipeline.feedback != nil {
		a.pipeline.feedback.Stop()
	}
	if a.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a.store.Flush(ctx)
		cancel()
		a.store.Stop()
	}
	if a.detect != nil {
		a.detect.Close()
	}
	if a.ids != nil {
		a.ids.Close()
	}
	if a.notifier != nil {
		a.notifier.Stop()
	}
}
