package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// feedbackError is the answer to a feedback upload that is not a
// feedback report: the error (its code is the parser's reason, e.g.
// not-arf) and the parse result.
type feedbackError struct {
	Error  ErrorDetail    `json:"error"`
	Result FeedbackResult `json:"result"`
}

func (a *API) feedback(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "source")
	if p.err != nil {
		return p.err
	}
	if !pr.All() {
		return errorf(ErrForbidden, "feedback may concern any domain's users: use a token of scope all")
	}
	if a.opts.Feedback == nil {
		return errorf(ErrUnavailable, "feedback ingestion is not configured")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxFeedbackBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(ErrTooLarge, "the report is over %d bytes", a.opts.MaxFeedbackBytes)
		}
		return errorf(ErrBadRequest, "reading the report: %v", err)
	}
	if len(raw) == 0 {
		return errorf(ErrBadRequest, "the body must be the feedback report (message/rfc822)")
	}
	source := p.str("source")
	if source == "" {
		source = "api"
	}
	source = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return -1
		}
		return c
	}, source)
	res, err := a.opts.Feedback.Ingest(r.Context(), raw, source)
	if err != nil {
		return err
	}
	if !res.OK {
		msg := res.Detail
		if msg == "" {
			msg = "not a feedback report: " + res.Error
		}
		writeJSONStatus(w, http.StatusUnprocessableEntity, feedbackError{Error: ErrorDetail{Code: res.Error, Message: msg}, Result: res})
		return nil
	}
	detail := "not attributed"
	switch {
	case res.Duplicate && res.ID == "":
		detail = "duplicate of " + res.DuplicateOf
	case res.Attributed:
		detail = fmt.Sprintf("%s %s tx %s counted %v locked %v", res.FeedbackType, res.Identity, res.TxID, res.Counted, res.Locked)
	}
	a.record(pr, AuditFeedback, AuditTarget{Kind: "feedback", Domain: res.Domain, Name: source}, "", detail)
	writeJSON(w, res)
	return nil
}

// ReloadResponse is the answer of a successful reload.
type ReloadResponse struct {
	Reloaded bool `json:"reloaded"`
}

func (a *API) reload(w http.ResponseWriter, r *http.Request, pr Principal) error {
	if p := newParams(r); p.err != nil {
		return p.err
	}
	if !pr.All() {
		return errorf(ErrForbidden, "reloading the configuration needs a token of scope all")
	}
	if a.opts.Reload == nil {
		return errorf(ErrUnavailable, "reload is not configured")
	}
	if err := a.opts.Reload(); err != nil {
		a.log.Warn("reload failed, running configuration kept", "actor", pr.Name, "path", r.URL.Path, "err", err)
		return errorf(ErrUpstream, "reload failed, running configuration kept: %v", err)
	}
	a.record(pr, AuditReload, AuditTarget{Kind: "config"}, "", "POST "+r.URL.Path)
	writeJSON(w, ReloadResponse{Reloaded: true})
	return nil
}

// AuditList is the answer of GET /api/v1/audit.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
	// NextCursor continues the listing (pass it as cursor); "" at the
	// end.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, pr Principal) error {
	p := newParams(r, "action", "actor", "domain", "since", "from", "limit", "cursor")
	f := AuditFilter{Action: p.str("action"), Actor: p.str("actor"), Domain: p.str("domain")}
	f.Since, _ = p.period(a.now())
	f.Limit = p.int("limit", DefaultAuditLimit, 1, MaxAuditLimit)
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
	if !pr.All() {
		if f.Domain != "" && !pr.Allows(f.Domain) {
			writeJSON(w, AuditList{Entries: []AuditEntry{}})
			return nil
		}
		f.Domain = pr.Domain
	}
	entries, err := a.audit.List(r.Context(), f)
	if err != nil {
		return err
	}
	res := AuditList{Entries: entries}
	if len(entries) == f.Limit {
		res.NextCursor = strconv.FormatUint(entries[len(entries)-1].ID, 10)
	}
	writeJSON(w, res)
	return nil
}
