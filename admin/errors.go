package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// Sentinel errors of the API. Handlers wrap them with a message for the
// client; writeError maps them to an HTTP status and an error code.
var (
	// ErrBadRequest: malformed JSON, a missing or invalid field. 400.
	ErrBadRequest = errors.New("bad request")
	// ErrBadParameter: a query parameter or a required choice of the
	// request is missing or invalid, the API's counterpart of a usage
	// error (the CLI exits 2 on it). 400, code bad_parameter; it is an
	// ErrBadRequest.
	ErrBadParameter = fmt.Errorf("%w: bad parameter", ErrBadRequest)
	// ErrUnauthorized: no bearer token, or one that matches no configured
	// token. 401.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the token's scope does not cover the object. 403.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such object or endpoint. 404.
	ErrNotFound = errors.New("not found")
	// ErrMethod: the endpoint exists but not with this method. 405.
	ErrMethod = errors.New("method not allowed")
	// ErrConflict: the object is not in a state that allows the request
	// (already locked, not locked, not quarantined). 409.
	ErrConflict = errors.New("conflict")
	// ErrGone: the quarantined content was deleted or expired. 410.
	ErrGone = errors.New("gone")
	// ErrTooLarge: the request body is over its limit. 413.
	ErrTooLarge = errors.New("request body too large")
	// ErrUnavailable: the feature is not configured (no release
	// delivery, no feedback ingester, no reload). 501.
	ErrUnavailable = errors.New("not available")
	// ErrUpstream: a dependency failed (release delivery, reload). 502.
	ErrUpstream = errors.New("upstream failure")
)

// ErrorBody is the JSON document of every error response:
// {"error":{"code":"bad_request","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Code is stable and meant for
// scripts; Message is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// classify returns the status and code of err, translating the sentinel
// errors of identity and quarantine.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadParameter), errors.Is(err, quarantine.ErrBadQuery):
		return http.StatusBadRequest, "bad_parameter"
	case errors.Is(err, ErrBadRequest), errors.Is(err, identity.ErrInvalid):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, "unauthorized"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrNotFound), errors.Is(err, identity.ErrNotFound), errors.Is(err, quarantine.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, identity.ErrAlreadyLocked):
		return http.StatusConflict, "already_locked"
	case errors.Is(err, identity.ErrNotLocked):
		return http.StatusConflict, "not_locked"
	case errors.Is(err, quarantine.ErrNotQuarantined):
		return http.StatusConflict, "not_quarantined"
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, ErrGone), errors.Is(err, quarantine.ErrGone):
		return http.StatusGone, "gone"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrUnavailable), errors.Is(err, quarantine.ErrNoDeliver):
		return http.StatusNotImplemented, "not_available"
	case errors.Is(err, ErrUpstream), errors.Is(err, quarantine.ErrDeliver):
		return http.StatusBadGateway, "upstream_failed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	case errors.Is(err, identity.ErrClosed), errors.Is(err, quarantine.ErrClosed):
		return http.StatusServiceUnavailable, "shutting_down"
	}
	return http.StatusInternalServerError, "internal"
}

// errorf wraps a sentinel with a message for the client.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// writeError answers with err's status and JSON body. Internal errors are
// logged and answered with a generic message, never their text.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	msg := clientMessage(err)
	if status == http.StatusInternalServerError {
		a.log.Error("admin api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see outguard's log"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="outguard"`)
	}
	writeJSONStatus(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// clientMessage is err's text for an operator: without the Go package
// prefixes of the sentinels ("identity: not locked: user trial (d)" reads
// "user trial (d) is not locked").
func clientMessage(err error) string {
	msg := err.Error()
	for _, s := range []struct {
		sentinel error
		suffix   string
	}{{identity.ErrNotLocked, " is not locked"}, {identity.ErrAlreadyLocked, " is already locked"}} {
		if rest, ok := strings.CutPrefix(msg, s.sentinel.Error()+": "); ok && errors.Is(err, s.sentinel) {
			return rest + s.suffix
		}
	}
	for _, prefix := range []string{"identity: ", "quarantine: "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return strings.Replace(msg, ErrBadParameter.Error()+": ", ErrBadRequest.Error()+": ", 1)
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
