package admin

import (
	"net/http"
	"strconv"

	"github.com/outguard/outguard/feedback"
)

// FeedbackResultOf is the API's form of what the intake made of a report.
// A refused report (not feedback) shows only its parse result.
func FeedbackResultOf(r feedback.Result) FeedbackResult {
	if !r.Parse.OK {
		return FeedbackResult{Result: r.Parse}
	}
	return FeedbackResult{Result: r.Parse, ID: r.ID, Attribution: r.Method, Attributed: r.Attributed(),
		TxID: r.TxID, User: r.User, Domain: r.Domain, Identity: r.Identity, Counted: r.Counted, NotCounted: r.NotCounted,
		Locked: r.Locked, Reporter: r.Reporter, Duplicate: r.Duplicate, DuplicateOf: r.DuplicateOf, Received: r.Received, Source: r.Source}
}

// listFeedback lists stored feedback reports, newest first, for review:
// what each was attributed to, whether it counted and why not. A token of
// one domain sees the reports attributed to that domain.
func (a *API) listFeedback(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "limit", "cursor", "counted", "domain")
	q := FeedbackQuery{Limit: p.int("limit", 100, 1, 1000), Before: p.str("cursor"), Domain: p.str("domain")}
	if s := p.str("counted"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			p.fail("counted %q: use true or false", s)
		}
		q.Counted = &b
	}
	if p.err != nil {
		return p.err
	}
	if a.opts.FeedbackList == nil {
		return errorf(ErrUnavailable, "feedback listing is not configured")
	}
	if !pr.All() {
		if q.Domain != "" && !pr.Allows(q.Domain) {
			writeJSON(w, FeedbackList{Reports: []FeedbackResult{}})
			return nil
		}
		q.Domain = pr.Domain
	}
	list, err := a.opts.FeedbackList.ListFeedback(r.Context(), q)
	if err != nil {
		return err
	}
	if list.Reports == nil {
		list.Reports = []FeedbackResult{}
	}
	writeJSON(w, list)
	return nil
}
