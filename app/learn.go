package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/quarantine"
)

// openLearner loads the content model's seed and the operator's overlay
// from the database. The learner outlives reloads: its overlay is state,
// not configuration, so max_overlay_features takes effect at start.
func (a *App) openLearner(cfg *config.Config) error {
	cm := cfg.Filter.Engines.Builtin.ContentModel
	if !cm.ModelEnabled() {
		return nil
	}
	seed, err := content.Seed()
	if err != nil {
		return fmt.Errorf("content model: %w", err)
	}
	var store content.Store = content.BoltStore{DB: a.db}
	if a.pg != nil {
		// store.backend postgres: the fleet's shared overlay.
		store = content.PgStore{Pool: a.pg, Node: cfg.NodeName}
	}
	l, err := content.NewLearner(seed, content.LearnerOptions{
		Store:      store,
		MaxOverlay: cm.MaxOverlayFeatures,
	})
	if err != nil {
		return fmt.Errorf("content model: %w", err)
	}
	a.learner = l
	if a.pg != nil {
		a.refreshOverlay(l)
	}
	info := l.Info()
	a.log.Info("content model loaded", "version", info.Version, "features", seed.Len(), "learned", info.Learned)
	return nil
}

// overlayRefreshEvery is how often a node on the postgres backend reads
// the lessons the other nodes taught (docs/content-model.md, "Several
// nodes").
const overlayRefreshEvery = 2 * time.Second

// refreshOverlay keeps l scoring with the fleet's lessons until the pool
// closes.
func (a *App) refreshOverlay(l *content.Learner) {
	a.pgLoops.Add(1)
	go func() {
		defer a.pgLoops.Done()
		t := time.NewTicker(overlayRefreshEvery)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-a.pgStop:
				return
			case <-t.C:
				err := l.Refresh()
				if err != nil && !failing {
					a.log.Warn("content model: reading the other nodes' lessons", "err", err)
				} else if err == nil && failing {
					a.log.Info("content model: reading the other nodes' lessons again")
				}
				failing = err != nil
			}
		}
	}()
}

// modelTeacher is the admin layer's view of the content model: learning
// from stored and uploaded messages, and the overlay's management.
type modelTeacher struct {
	a *App
}

var _ ops.ModelTeacher = modelTeacher{}

// errLearningOff is returned when the configuration turns learning off.
var errLearningOff = fmt.Errorf("%w: learning is turned off (filter.engines.builtin.content_model)", ops.ErrConflict)

// model returns the content model, or an error when it is disabled.
func (t modelTeacher) model() (*content.Learner, error) {
	if t.a.learner == nil {
		return nil, fmt.Errorf("%w: the content model is disabled", ops.ErrConflict)
	}
	return t.a.learner, nil
}

// learner returns the content model when learning is on.
func (t modelTeacher) learner() (*content.Learner, error) {
	if _, err := t.model(); err != nil {
		return nil, err
	}
	t.a.mu.Lock()
	on := t.a.cfg.Filter.Engines.Builtin.ContentModel.LearnEnabled()
	t.a.mu.Unlock()
	if !on {
		return nil, errLearningOff
	}
	return t.a.learner, nil
}

// LearnStored teaches the model with the stored (quarantined) message id.
// Only quarantined messages keep their content; for the others it returns
// an error wrapping ops.ErrConflict.
func (t modelTeacher) LearnStored(ctx context.Context, id string, spam bool) (ops.LearnResult, error) {
	l, err := t.learner()
	if err != nil {
		return ops.LearnResult{}, err
	}
	raw, err := t.a.store.Raw(id, quarantine.Actor{Name: "learn"})
	switch {
	case errors.Is(err, quarantine.ErrNotQuarantined), errors.Is(err, quarantine.ErrGone):
		return ops.LearnResult{}, fmt.Errorf("%w: %s: the message's content is not kept, so the model cannot learn from it (%v)", ops.ErrConflict, id, err)
	case err != nil:
		return ops.LearnResult{}, err
	}
	res, err := t.learn(l, raw, spam)
	if err != nil {
		return res, err
	}
	label := "ham"
	if spam {
		label = "spam"
	}
	if err := t.a.store.SetLearned(ctx, id, label); err != nil {
		t.a.log.Warn("recording what was learnt failed", "tx", id, "err", err)
	}
	return res, nil
}

// LearnRaw teaches the model with an uploaded message.
func (t modelTeacher) LearnRaw(ctx context.Context, raw []byte, spam bool) (ops.LearnResult, error) {
	l, err := t.learner()
	if err != nil {
		return ops.LearnResult{}, err
	}
	return t.learn(l, raw, spam)
}

func (t modelTeacher) learn(l *content.Learner, raw []byte, spam bool) (ops.LearnResult, error) {
	m, err := filter.ParseBytes(raw, filter.DefaultLimits())
	if err != nil {
		return ops.LearnResult{}, fmt.Errorf("%w: %v", ops.ErrBadRequest, err)
	}
	before, after, err := filter.LearnMessage(l, m, spam)
	if err != nil {
		return ops.LearnResult{}, err
	}
	as := "ham"
	if spam {
		as = "spam"
	}
	t.a.log.Info("content model learnt", "as", as, "before", before, "after", after, "version", l.Version())
	return ops.LearnResult{As: as, Before: before, After: after, Version: l.Version()}, nil
}

// Info describes the model and its overlay.
func (t modelTeacher) Info() (ops.ModelInfo, error) {
	l, err := t.model()
	if err != nil {
		return ops.ModelInfo{}, err
	}
	seed := l.Seed()
	return ops.ModelInfo{
		Overlay: l.Info(), SeedFeatures: seed.Len(), Trained: seed.Info,
		SpamThreshold: float64(seed.Spam), SuspectThreshold: float64(seed.Suspect),
	}, nil
}

// Export returns the overlay.
func (t modelTeacher) Export() ([]byte, error) {
	l, err := t.model()
	if err != nil {
		return nil, err
	}
	return l.Export(), nil
}

// Import replaces the overlay.
func (t modelTeacher) Import(data []byte) error {
	l, err := t.model()
	if err != nil {
		return err
	}
	if err := l.Import(data); err != nil {
		if errors.Is(err, content.ErrBadOverlay) {
			return fmt.Errorf("%w: %v", ops.ErrBadRequest, err)
		}
		return err
	}
	return nil
}

// Reset drops the overlay.
func (t modelTeacher) Reset() error {
	l, err := t.model()
	if err != nil {
		return err
	}
	return l.Reset()
}
