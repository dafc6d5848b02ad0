package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/identity"
)

// TestAPIMountedOnServer mounts the API on the admin Server as app does
// and checks that both the API and the server's own endpoints answer.
func TestAPIMountedOnServer(t *testing.T) {
	e := newEnv(t)
	srv := admin.New(admin.Options{Gatherer: e.Reg})
	srv.Handle(Prefix, e.api)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/api/v1/locks", tokAll, 200},
		{"/api/v1/locks", "", 401},
		{"/api/v1/nothing", tokAll, 404},
		{"/metrics", "", 200},
		{"/-/healthy", "", 200},
	} {
		req, _ := http.NewRequest("GET", hs.URL+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: got %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestAPIWouldLocks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := identity.DefaultPolicy()
	p.Monitor = true
	for _, d := range []string{domOut, domOther} {
		for i := range 5 {
			o := identity.Observation{Domain: d, User: "u", Identity: "monitored", TxID: "tx" + strconvI(int64(i)), Class: identity.ClassSpam, Recipients: 1}
			if _, err := e.Locks.Observe(ctx, o, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name, token, query string
		want               int
	}{
		{"all", tokAll, "", 2},
		{"domain filter", tokAll, "?domain=" + domOther, 1},
		{"scoped", tokOut, "", 1},
		{"scoped asking for another domain", tokOut, "?domain=" + domOther, 0},
		{"identity", tokAll, "?identity=nobody", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res apiv1.WouldLockList
			if code := e.DoJSON("GET", "/api/v1/would-locks"+tc.query, tc.token, nil, &res); code != 200 {
				t.Fatalf("got %d", code)
			}
			if len(res.WouldLocks) != tc.want {
				t.Errorf("got %d, want %d", len(res.WouldLocks), tc.want)
			}
			for _, w := range res.WouldLocks {
				if tc.token == tokOut && w.Target.Domain != domOut {
					t.Errorf("scoped token saw %s", w.Target.Domain)
				}
				if len(w.Evidence.TxIDs) != 5 {
					t.Errorf("evidence: got %v", w.Evidence.TxIDs)
				}
			}
		})
	}
	if code, b := e.Do("GET", "/api/v1/would-locks?limit=0", tokAll, nil); code != 400 {
		t.Errorf("bad limit: got %d %s", code, b)
	}
}
