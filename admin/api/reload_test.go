package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin"
	"github.com/outguard/outguard/admin/ops"
)

// TestReloadEndpointNeedsScopeAll checks POST /-/reload on the admin
// server as app mounts it: a token of scope all reloads and is audited;
// no token, a wrong token or a domain token reloads nothing.
func TestReloadEndpointNeedsScopeAll(t *testing.T) {
	e := newEnv(t)
	srv := admin.New(admin.Options{Gatherer: e.Reg})
	e.api.Mount(srv)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	post := func(token string, header map[string]string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hs.URL+ReloadPath, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	for _, tc := range []struct {
		name, token string
		want        int
		code        string
	}{
		{"no token", "", http.StatusUnauthorized, "unauthorized"},
		{"wrong token", "not-a-token", http.StatusUnauthorized, "unauthorized"},
		{"domain token", tokOut, http.StatusForbidden, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := post(tc.token, nil)
			if code != tc.want || errorOf(t, b).Code != tc.code {
				t.Errorf("got %d %s, want %d %s", code, b, tc.want, tc.code)
			}
			if e.Reloads != 0 {
				t.Errorf("reloads = %d, want 0", e.Reloads)
			}
		})
	}
	if n := e.AuditCount(); n != 0 {
		t.Fatalf("audit has %d entries before any reload, want 0", n)
	}

	code, b := post(tokAll, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"reloaded":true`) || e.Reloads != 1 {
		t.Fatalf("scope all: got %d %s, reloads %d; want 200 and one reload", code, b, e.Reloads)
	}
	l := e.AuditEntries(ops.AuditFilter{Action: ops.AuditReload})
	if len(l) != 1 || l[0].Actor != "root" || l[0].Scope != ops.ScopeAll || l[0].Target.Kind != "config" || l[0].Detail != "POST "+ReloadPath {
		t.Errorf("audit: got %+v, want one reload by root", l)
	}

	e.ReloadErr = errTest
	if code, b := post(tokAll, nil); code != http.StatusBadGateway || !strings.Contains(errorOf(t, b).Message, errTest.Error()) {
		t.Errorf("failed reload: got %d %s, want 502 with the reason", code, b)
	}
	if n := e.AuditCount(); n != 1 {
		t.Errorf("audit has %d entries after a failed reload, want still 1", n)
	}

	// GET changes nothing and says which method to use.
	resp, err := hs.Client().Get(hs.URL + ReloadPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: got %d, want 405", ReloadPath, resp.StatusCode)
	}
}

// TestReloadRefusesCrossOriginForm sends what a browser sends when a page
// of another site submits a form to the admin listener: even with a valid
// token in the form (a browser cannot set Authorization cross-site) or a
// token header, nothing reloads.
func TestReloadRefusesCrossOriginForm(t *testing.T) {
	e := newEnv(t)
	srv := admin.New(admin.Options{Gatherer: e.Reg})
	e.api.Mount(srv)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	for _, tc := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"form with the token as a field", map[string]string{
			"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
		}, http.StatusForbidden},
		{"older browser, Origin only", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site with a bearer token", map[string]string{
			"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Authorization": "Bearer " + tokAll,
		}, http.StatusForbidden},
		{"same-site form without token", map[string]string{
			"Origin": hs.URL, "Sec-Fetch-Site": "same-origin",
		}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"token": {tokAll}, "access_token": {tokAll}}
			req, _ := http.NewRequest(http.MethodPost, hs.URL+ReloadPath, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			if e.Reloads != 0 {
				t.Errorf("reloads = %d, want 0", e.Reloads)
			}
		})
	}
}
