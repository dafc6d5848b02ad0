package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/feedback"
)

func adminTokens(cfg *config.Config) []admin.Token {
	out := make([]admin.Token, 0, len(cfg.Admin.Tokens))
	for _, t := range cfg.Admin.Tokens {
		out = append(out, admin.Token{Name: t.Name, Hash: t.Hash, Scope: t.Scope})
	}
	return out
}

// mountAPI builds the admin API over the running components and mounts
// it under /api/v1/.
func (a *App) mountAPI(cfg *config.Config) error {
	var teacher admin.ModelTeacher
	if a.learner != nil {
		teacher = modelTeacher{a: a}
	}
	api, err := admin.NewAPI(admin.APIOptions{
		Teacher:      teacher,
		Tokens:       adminTokens(cfg),
		Locks:        a.ids,
		Store:        a.store,
		Feedback:     admin.FeedbackFunc(a.ingestFeedback),
		FeedbackList: feedbackListFunc(a.listFeedback),
		Campaigns:    a.campaignsWire(),
		Reload:       a.ReloadFromFile,
		DB:           a.db,
		UserDomain: func(user string) (string, bool) {
			e, ok := a.auth.table.Load().byName[user]
			if !ok {
				return "", false
			}
			return e.user.Domain, true
		},
		KnownDomain: func(d string) bool {
			for _, dom := range a.Config().Domains {
				if strings.EqualFold(dom.Name, d) {
					return true
				}
			}
			return false
		},
		MaxFeedbackBytes: cfg.ARF.ParseMaxBytes,
		Now:              a.opts.Now,
		Logger:           a.log.With("component", "api"),
		Registerer:       a.reg,
	})
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	a.api = api
	api.Mount(a.admin)
	console, err := admin.NewConsole(admin.ConsoleOptions{API: api, Logger: a.log.With("component", "console")})
	if err != nil {
		return fmt.Errorf("admin console: %w", err)
	}
	a.admin.Handle("/", console)
	return nil
}

// ingestFeedback adapts the feedback intake to the API: a report that is
// not feedback is a result (422), not an error.
func (a *App) ingestFeedback(ctx context.Context, raw []byte, src string) (admin.FeedbackResult, error) {
	r, err := a.pipeline.feedback.Ingest(ctx, raw, src)
	if err != nil && !errors.Is(err, feedback.ErrNotFeedback) {
		return admin.FeedbackResult{}, err
	}
	return admin.FeedbackResultOf(r), nil
}

// listFeedback serves GET /api/v1/feedback from the intake's store.
func (a *App) listFeedback(ctx context.Context, q admin.FeedbackQuery) (admin.FeedbackList, error) {
	out := admin.FeedbackList{Reports: []admin.FeedbackResult{}}
	before := q.Before
	// A domain filter may skip many reports: read pages until this one
	// is full or the store ends.
	for {
		page, next, err := a.pipeline.feedback.List(q.Limit, before, q.Counted)
		if err != nil {
			return out, err
		}
		for _, r := range page {
			if q.Domain != "" && !strings.EqualFold(r.Domain, q.Domain) {
				continue
			}
			out.Reports = append(out.Reports, admin.FeedbackResultOf(r))
			if len(out.Reports) == q.Limit {
				out.Next = r.ID
				return out, nil
			}
		}
		if next == "" {
			return out, nil
		}
		before = next
	}
}

// feedbackListFunc adapts a function to admin.FeedbackLister.
type feedbackListFunc func(context.Context, admin.FeedbackQuery) (admin.FeedbackList, error)

func (f feedbackListFunc) ListFeedback(ctx context.Context, q admin.FeedbackQuery) (admin.FeedbackList, error) {
	return f(ctx, q)
}
