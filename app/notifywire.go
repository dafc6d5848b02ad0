package app

import (
	"context"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/notify"
)

// newNotifier builds the webhook/mail notifier when the configuration
// asks for one; nil otherwise.
func (a *App) newNotifier(cfg *config.Config) (*notify.Notifier, error) {
	w := cfg.Notify.Webhook
	if w.URL == "" && !cfg.Notify.MailOnAutoLock {
		return nil, nil
	}
	var events []notify.EventType
	for _, e := range w.Events {
		t, err := notify.ParseEventType(e)
		if err != nil {
			return nil, err
		}
		events = append(events, t)
	}
	o := notify.Options{
		DB: a.db, URL: w.URL, Secret: []byte(w.Secret), Events: events,
		Timeout: w.Timeout.D(), RetryInitial: w.Retry.Initial.D(), RetryMax: w.Retry.Max.D(), MaxAge: w.MaxAge.D(),
		Mail:       notify.MailOptions{From: cfg.ARF.From, Hostname: cfg.Hostname},
		Now:        a.opts.Now,
		Logger:     a.log.With("component", "notify"),
		Registerer: a.reg,
	}
	if a.pg != nil {
		// store.backend postgres: the fleet's shared outbox, worked by
		// every node (docs/config-notify.md, "Several nodes").
		o.DB, o.Postgres, o.Node = nil, a.pg, cfg.NodeName
	}
	if cfg.Notify.MailOnAutoLock {
		send := a.arfSend(cfg)
		o.SendMail = func(ctx context.Context, to string, raw []byte) error { return send(ctx, "", []string{to}, raw) }
		o.AbuseAddress = func(domain, user string) string {
			if up, ok := a.pipeline.state.Load().users[user]; ok {
				return up.abuseAddress
			}
			return a.Config().ARF.AbuseAddress
		}
	}
	return notify.New(o)
}
