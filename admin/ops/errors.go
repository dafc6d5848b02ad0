package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// Sentinel errors of the operations. They are wrapped with a message for
// the operator; Classify maps them to an HTTP status and an error code.
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

// Classify returns the HTTP status and the error code (docs/api.md) of
// err, translating the sentinel errors of identity and quarantine. Both
// front ends answer with it.
func Classify(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadParameter), errors.Is(err, quarantine.ErrBadQuery):
		return http.StatusBadRequest, "bad_parameter"
	case errors.Is(err, ErrBadRequest), errors.Is(err, identity.ErrInvalid):
		return http.StatusBadRequest, "bad_request"
	case errors.Is(err, ErrThrottled):
		return http.StatusTooManyRequests, "too_many_requests"
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
	case errors.Is(err, quarantine.ErrDegraded):
		// PostgreSQL is out of reach (docs/config-store.md).
		return http.StatusServiceUnavailable, "store_degraded"
	}
	return http.StatusInternalServerError, "internal"
}

// Errorf wraps a sentinel with a message for the client.
func Errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
