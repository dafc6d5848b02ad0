package api

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/identity"
)

// writeError answers with err's status and JSON body (ops.Classify).
// Internal errors are logged and answered with a generic message, never
// their text.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := ops.Classify(err)
	msg := clientMessage(err)
	if status == http.StatusInternalServerError {
		a.log.Error("admin api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see outguard's log"
	}
	var te *ops.ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(te.RetryAfter.Seconds()))))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="outguard"`)
	}
	writeJSONStatus(w, status, apiv1.ErrorBody{Error: apiv1.ErrorDetail{Code: code, Message: msg}})
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
	return strings.Replace(msg, ops.ErrBadParameter.Error()+": ", ops.ErrBadRequest.Error()+": ", 1)
}

func writeJSON(w http.ResponseWriter, v any) { WriteJSON(w, http.StatusOK, v) }

func writeJSONStatus(w http.ResponseWriter, status int, v any) { WriteJSON(w, status, v) }

// WriteJSON answers with status and v as JSON, as every API reply is
// written (not cached, not sniffed, HTML not escaped). The console
// answers its script with it.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
