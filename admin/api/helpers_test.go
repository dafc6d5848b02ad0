package api

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
	"github.com/outguard/outguard/quarantine"
)

// The fixtures' tokens and domains (admin/internal/admintest).
const (
	tokAll   = admintest.TokAll
	tokOut   = admintest.TokOut
	tokOther = admintest.TokOther
	domOut   = admintest.DomOut
	domOther = admintest.DomOther
)

// env is the API over the shared fixtures, served by httptest.
type env struct {
	*admintest.Env
	admintest.Client
	t   testing.TB
	api *API
	srv *httptest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with setup run after seeding and before the
// operations are built (it may set e.Opts.Teacher or Campaigns).
func newEnvWith(t testing.TB, setup func(*admintest.Env)) *env {
	t.Helper()
	e := &env{t: t, Env: admintest.New(t, setup)}
	var err error
	e.api, err = New(Options{Ops: e.Ops, Registerer: e.Reg, MaxFeedbackBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	e.Client = admintest.Client{T: t, Srv: e.srv}
	return e
}

// errorOf decodes an error body, failing the test if it is not one.
func errorOf(t *testing.T, b []byte) apiv1.ErrorDetail {
	t.Helper()
	var eb apiv1.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("got body %q, want a JSON error with code and message", b)
	}
	return eb.Error
}

var quarantineAll = quarantine.Actor{Name: "test"}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

// record writes a lock entry by root to the audit trail.
func (e *env) record(target ops.AuditTarget, reason string) {
	e.t.Helper()
	if _, err := e.Audit().Record(ops.AuditEntry{At: e.Clock.Now().UTC(), Actor: "root", Scope: ops.ScopeAll, Action: ops.AuditLock,
		Target: target, Reason: reason}); err != nil {
		e.t.Fatal(err)
	}
}

var errTest = errors.New("test failure")
