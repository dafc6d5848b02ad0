package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/console"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/feedback"
)

func adminTokens(cfg *config.Config) []ops.Token {
	out := make([]ops.Token, 0, len(cfg.Admin.Tokens))
	for _, t := range cfg.Admin.Tokens {
		out = append(out, ops.Token{Name: t.Name, Hash: t.Hash, Scope: t.Scope})
	}
	return out
}

// adminAccounts are the console accounts of cfg; a TOTP secret file
// that cannot be read fails (Validate read it before).
func adminAccounts(cfg *config.Config) ([]ops.Account, error) {
	out := make([]ops.Account, 0, len(cfg.Admin.Accounts))
	for _, a := range cfg.Admin.Accounts {
		secret, err := a.TOTP()
		if err != nil {
			return nil, fmt.Errorf("admin.accounts (%s): %w", a.Name, err)
		}
		out = append(out, ops.Account{Name: a.Name, PasswordHash: a.PasswordHash, TOTPSecret: secret, Scope: a.Scope})
	}
	return out, nil
}

// adminOIDC is the console's OpenID Connect sign-in of cfg, nil when
// admin.oidc is absent; a client secret file that cannot be read fails.
func adminOIDC(cfg *config.Config) (*console.OIDCOptions, error) {
	o := cfg.Admin.OIDC
	if o == nil {
		return nil, nil
	}
	secret, err := o.Secret()
	if err != nil {
		return nil, err
	}
	out := &console.OIDCOptions{Name: o.Name, Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret,
		RedirectURL: o.RedirectURL, Scopes: o.Scopes, GroupsClaim: o.GroupsClaim}
	for _, g := range o.Grants {
		out.Grants = append(out.Grants, console.OIDCGrant{Group: g.Group, Email: g.Email, Subject: g.Subject, Scope: g.Scope})
	}
	return out, nil
}

func adminThrottle(cfg *config.Config) ops.ThrottleOptions {
	t := cfg.Admin.SignInThrottle
	return ops.ThrottleOptions{Failures: t.Failures, Window: t.Window.D(), Lockout: t.Lockout.D(), MaxLockout: t.MaxLockout.D()}
}

// mountAPI builds the operations layer over the running components and
// its two front ends: the JSON API under /api/v1/ (and /-/reload) and
// the console at /.
func (a *App) mountAPI(cfg *config.Config) error {
	var teacher ops.ModelTeacher
	if a.learner != nil {
		teacher = modelTeacher{a: a}
	}
	accounts, err := adminAccounts(cfg)
	if err != nil {
		return err
	}
	// On postgres the audit trail is the fleet's (docs/config-store.md).
	var audit ops.AuditStore
	var steps ops.TOTPSteps
	if a.pg != nil {
		if audit, err = ops.OpenPgAudit(a.pg, cfg.NodeName); err != nil {
			return fmt.Errorf("admin audit trail: %w", err)
		}
		steps = ops.PgTOTPSteps{Pool: a.pg}
	}
	o, err := ops.New(ops.Options{
		Teacher:      teacher,
		Tokens:       adminTokens(cfg),
		Accounts:     accounts,
		Throttle:     adminThrottle(cfg),
		Locks:        a.ids,
		Store:        a.store,
		Feedback:     ops.FeedbackFunc(a.ingestFeedback),
		FeedbackList: ops.FeedbackListFunc(a.listFeedback),
		Campaigns:    a.campaignsWire(),
		Explainer:    ruleExplainer{a: a},
		Notices:      noticeRenderer{a: a},
		NoticeOutbox: noticeRenderer{a: a},
		Reload:       a.ReloadFromFile,
		DB:           a.db,
		Audit:        audit,
		TOTPSteps:    steps,
		Node:         cfg.NodeName,
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
		Now:        a.opts.Now,
		Logger:     a.log.With("component", "api"),
		Registerer: a.reg,
	})
	if err != nil {
		return fmt.Errorf("admin operations: %w", err)
	}
	a.ops = o
	jsonAPI, err := api.New(api.Options{Ops: o, MaxFeedbackBytes: cfg.ARF.ParseMaxBytes, Registerer: a.reg})
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	jsonAPI.Mount(a.admin)
	oidc, err := adminOIDC(cfg)
	if err != nil {
		return err
	}
	// On postgres the sessions are the fleet's: a session started on one
	// node is valid on all of them.
	c, err := console.New(console.Options{Ops: o, OIDC: oidc, Postgres: a.pg, Node: cfg.NodeName, Logger: a.log.With("component", "console")})
	if err != nil {
		return fmt.Errorf("admin console: %w", err)
	}
	a.console = c
	a.admin.Handle("/", c)
	return nil
}

// ingestFeedback hands an uploaded report to the feedback intake.
func (a *App) ingestFeedback(ctx context.Context, raw []byte, src string) (feedback.Result, error) {
	return a.pipeline.feedback.Ingest(ctx, raw, src)
}

// listFeedback serves the feedback listing from the intake's store.
func (a *App) listFeedback(ctx context.Context, q ops.FeedbackQuery) (ops.FeedbackList, error) {
	out := ops.FeedbackList{Reports: []feedback.Result{}}
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
			out.Reports = append(out.Reports, r)
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
