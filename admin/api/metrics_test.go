package api

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAPIMetrics(t *testing.T) {
	e := newEnv(t)
	e.Do("GET", "/api/v1/locks", tokAll, nil)
	e.Do("GET", "/api/v1/locks", tokAll, nil)
	e.Do("GET", "/api/v1/locks", "", nil)
	e.Do("GET", "/api/v1/locks?kind=x", tokAll, nil)
	e.Do("GET", "/api/v1/messages/"+e.SpamOther, tokOut, nil)
	e.ReloadErr = errTest
	e.Do("POST", "/api/v1/reload", tokAll, nil)
	e.Do("GET", "/api/v1/what", tokAll, nil)

	want := `
# HELP outguard_api_auth_failures_total Admin API requests refused for a missing or invalid bearer token.
# TYPE outguard_api_auth_failures_total counter
outguard_api_auth_failures_total 1
# HELP outguard_api_requests_total Admin API requests by route pattern and status code class (2xx, 4xx, 5xx).
# TYPE outguard_api_requests_total counter
outguard_api_requests_total{code="2xx",route="GET /api/v1/locks"} 2
outguard_api_requests_total{code="4xx",route="/api/v1/"} 1
outguard_api_requests_total{code="4xx",route="GET /api/v1/locks"} 2
outguard_api_requests_total{code="4xx",route="GET /api/v1/messages/{id}"} 1
outguard_api_requests_total{code="5xx",route="POST /api/v1/reload"} 1
`
	if err := testutil.GatherAndCompare(e.Reg, strings.NewReader(want), "outguard_api_requests_total", "outguard_api_auth_failures_total"); err != nil {
		t.Error(err)
	}
}
