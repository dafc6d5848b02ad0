package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
)

// feedback ingests an uploaded feedback report; one that is not a
// feedback report is answered 422 with its parse result.
func (a *API) feedback(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "source")
	if p.err != nil {
		return p.err
	}
	res, err := a.ops.IngestFeedback(r.Context(), pr, p.str("source"), func() ([]byte, error) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxFeedbackBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, ops.Errorf(ops.ErrTooLarge, "the report is over %d bytes", a.opts.MaxFeedbackBytes)
			}
			return nil, ops.Errorf(ops.ErrBadRequest, "reading the report: %v", err)
		}
		return raw, nil
	})
	if err != nil {
		return err
	}
	out := FeedbackResultOf(res)
	if !out.OK {
		msg := out.Detail
		if msg == "" {
			msg = "not a feedback report: " + out.Error
		}
		writeJSONStatus(w, http.StatusUnprocessableEntity, apiv1.FeedbackError{Error: apiv1.ErrorDetail{Code: out.Error, Message: msg}, Result: out})
		return nil
	}
	writeJSON(w, out)
	return nil
}

// listFeedback lists stored feedback reports, newest first, for review:
// what each was attributed to, whether it counted and why not.
func (a *API) listFeedback(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "limit", "cursor", "counted", "domain")
	q := ops.FeedbackQuery{Limit: p.int("limit", 100, 1, 1000), Before: p.str("cursor"), Domain: p.str("domain")}
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
	list, err := a.ops.ListFeedback(r.Context(), pr, q)
	if err != nil {
		return err
	}
	res := apiv1.FeedbackList{Reports: make([]apiv1.FeedbackResult, 0, len(list.Reports)), Next: list.Next}
	for _, x := range list.Reports {
		res.Reports = append(res.Reports, FeedbackResultOf(x))
	}
	writeJSON(w, res)
	return nil
}

func (a *API) reload(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	if err := a.ops.Reload(pr, "POST "+r.URL.Path); err != nil {
		return err
	}
	writeJSON(w, apiv1.ReloadResponse{Reloaded: true})
	return nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, pr ops.Principal) error {
	p := newParams(r, "action", "actor", "domain", "since", "from", "limit", "cursor")
	f := ops.AuditFilter{Action: p.str("action"), Actor: p.str("actor"), Domain: p.str("domain")}
	f.Since, _ = p.period(a.ops.Now())
	f.Limit = p.int("limit", ops.DefaultAuditLimit, 1, ops.MaxAuditLimit)
	if c := p.str("cursor"); c != "" {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil || n == 0 {
			p.fail("cursor %q: pass the next_cursor of the previous page", c)
		}
		f.Before = n
	}
	if p.err != nil {
		return p.err
	}
	entries, err := a.ops.Audit(r.Context(), pr, f)
	if err != nil {
		return err
	}
	res := apiv1.AuditList{Entries: make([]apiv1.AuditEntry, 0, len(entries))}
	for _, e := range entries {
		res.Entries = append(res.Entries, AuditEntryOf(e))
	}
	if len(entries) == f.Limit {
		res.NextCursor = strconv.FormatUint(entries[len(entries)-1].ID, 10)
	}
	writeJSON(w, res)
	return nil
}
