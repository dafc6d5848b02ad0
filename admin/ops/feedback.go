package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/outguard/outguard/feedback"
)

// IngestFeedback ingests an uploaded feedback report, read by read once p
// may (feedback may concern any domain's users: scope all), and writes
// the audit entry of an accepted report. source names where the report
// came from ("" is "api"); control characters are dropped from it. A
// report that is not a feedback report is a result with Parse.OK false,
// not an error.
func (o *Ops) IngestFeedback(ctx context.Context, p Principal, source string, read func() ([]byte, error)) (feedback.Result, error) {
	if err := needAll(p, "feedback may concern any domain's users: use a token of scope all"); err != nil {
		return feedback.Result{}, err
	}
	if o.opts.Feedback == nil {
		return feedback.Result{}, Errorf(ErrUnavailable, "feedback ingestion is not configured")
	}
	raw, err := read()
	if err != nil {
		return feedback.Result{}, err
	}
	if len(raw) == 0 {
		return feedback.Result{}, Errorf(ErrBadRequest, "the body must be the feedback report (message/rfc822)")
	}
	if source == "" {
		source = "api"
	}
	source = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, source)
	res, err := o.opts.Feedback.Ingest(ctx, raw, source)
	if err != nil && !errors.Is(err, feedback.ErrNotFeedback) {
		return feedback.Result{}, err
	}
	if !res.Parse.OK {
		return res, nil
	}
	detail := "not attributed"
	switch {
	case res.Duplicate && res.ID == "":
		detail = "duplicate of " + res.DuplicateOf
	case res.Attributed():
		detail = fmt.Sprintf("%s %s tx %s counted %v locked %v", res.Parse.FeedbackType, res.Identity, res.TxID, res.Counted, res.Locked)
	}
	o.record(p, AuditFeedback, AuditTarget{Kind: "feedback", Domain: res.Domain, Name: source}, "", detail, "")
	return res, nil
}

// ListFeedback lists stored feedback reports, newest first, for review; a
// domain-scoped principal sees the reports attributed to its domain.
func (o *Ops) ListFeedback(ctx context.Context, p Principal, q FeedbackQuery) (FeedbackList, error) {
	if o.opts.FeedbackList == nil {
		return FeedbackList{}, Errorf(ErrUnavailable, "feedback listing is not configured")
	}
	if !p.All() {
		if q.Domain != "" && !p.Allows(q.Domain) {
			return FeedbackList{Reports: []feedback.Result{}}, nil
		}
		q.Domain = p.Domain
	}
	list, err := o.opts.FeedbackList.ListFeedback(ctx, q)
	if err != nil {
		return FeedbackList{}, err
	}
	if list.Reports == nil {
		list.Reports = []feedback.Result{}
	}
	return list, nil
}

// Reload re-reads the configuration for p (scope all) and writes the
// audit entry; via says how it was asked ("POST /-/reload").
func (o *Ops) Reload(p Principal, via string) error {
	if err := needAll(p, "reloading the configuration needs a token of scope all"); err != nil {
		return err
	}
	if o.opts.Reload == nil {
		return Errorf(ErrUnavailable, "reload is not configured")
	}
	if err := o.opts.Reload(); err != nil {
		o.log.Warn("reload failed, running configuration kept", "actor", p.Name, "via", via, "err", err)
		return Errorf(ErrUpstream, "reload failed, running configuration kept: %v", err)
	}
	o.record(p, AuditReload, AuditTarget{Kind: "config"}, "", via, "")
	return nil
}
