package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/internal/admintest"
)

// FuzzAPIRequest sends arbitrary query strings and JSON bodies to the
// endpoints that parse them: the answer is never a 5xx and always JSON.
// Campaign detection is on (the fake campaigns of api_campaigns_test.go).
func FuzzAPIRequest(f *testing.F) {
	e := newEnvWith(f, func(e *admintest.Env) { e.Opts.Campaigns = admintest.NewCampaigns(e) })
	for _, seed := range []struct{ method, path, query, body string }{
		{"GET", "/api/v1/messages", "status=quarantined,accepted&since=7d&limit=10", ""},
		{"GET", "/api/v1/messages", "from=2026-03-01&to=2026-03-02T10:00&client_ip=::ffff:192.0.2.1", ""},
		{"GET", "/api/v1/messages", "cursor=YzEuMDFK&verdict=none", ""},
		{"GET", "/api/v1/reports", "group_by=sender&classification=virus&since=1.5d", ""},
		{"GET", "/api/v1/locks", "kind=identity&active=1&limit=5", ""},
		{"GET", "/api/v1/audit", "since=2w&cursor=18446744073709551615", ""},
		{"POST", "/api/v1/locks", "", `{"kind":"identity","domain":"out.example.net","name":"x","reason":"r","duration":"1e3h"}`},
		{"POST", "/api/v1/locks", "", `{"kind":"user","name":"webhost1","reason":"r","duration":"-0s"}`},
		{"DELETE", "/api/v1/locks/user/webhost1", "reason=%00", `{"reason":"\u0000"}`},
		{"GET", "/api/v1/campaigns", "since=1h&min_identities=2&min_users=1&confirmed=true&identity=a&limit=2&before=2026-03-01T11:59:00Z", ""},
		{"GET", "/api/v1/campaigns/" + campA, "", ""},
		{"POST", "/api/v1/campaigns/" + campA + "/lock", "", `{"reason":"botnet","duration":"7d"}`},
		{"POST", "/api/v1/campaigns/" + campB + "/confirm", "", ""},
		{"POST", "/api/v1/campaigns/%2F/unconfirm", "", "{}"},
	} {
		f.Add(seed.method, seed.path, seed.query, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		switch method {
		case "GET", "POST", "DELETE":
		default:
			return
		}
		if !strings.HasPrefix(path, "/api/v1/") || strings.ContainsAny(path, " ?#\x00\r\n") {
			return
		}
		req, err := http.NewRequest(method, "http://outguard"+path+"?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+tokAll)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented && rec.Code != http.StatusBadGateway {
			t.Fatalf("%s %s?%s %q: got %d %s", method, path, query, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("invalid JSON answer %q", rec.Body)
		}
	})
}
