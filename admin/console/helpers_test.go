package console

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/api"
	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/identity"
)

// The fixtures' tokens and domains (admin/internal/admintest).
const (
	tokAll   = admintest.TokAll
	tokOut   = admintest.TokOut
	tokOther = admintest.TokOther
	domOut   = admintest.DomOut
	domOther = admintest.DomOther
	campA    = admintest.CampA
	campB    = admintest.CampB
	campC    = admintest.CampC
)

// consoleEnv is the console over the shared fixtures, with the JSON API
// mounted beside it as the daemon does.
type consoleEnv struct {
	*admintest.Env
	admintest.Client
	t       testing.TB
	console *Console
	srv     *httptest.Server
	// teacher is the content model, nil unless made by
	// newConsoleEnvTeacher.
	teacher *admintest.Teacher
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	return newConsoleEnvWith(t, nil, nil)
}

// newConsoleEnvCampaigns is newConsoleEnv with the fake campaigns.
func newConsoleEnvCampaigns(t *testing.T) (*consoleEnv, *admintest.Campaigns) {
	t.Helper()
	var f *admintest.Campaigns
	e := newConsoleEnvWith(t, nil, func(e *admintest.Env) {
		f = admintest.NewCampaigns(e)
		e.Opts.Campaigns = f
	})
	return e, f
}

// newConsoleEnvTeacher is newConsoleEnv with a content model to teach.
func newConsoleEnvTeacher(t *testing.T) *consoleEnv {
	t.Helper()
	return newConsoleEnvWith(t, &admintest.Teacher{}, nil)
}

func newConsoleEnvWith(t *testing.T, teacher *admintest.Teacher, setup func(*admintest.Env)) *consoleEnv {
	t.Helper()
	e := admintest.New(t, func(e *admintest.Env) {
		if teacher != nil {
			teacher.Store = e.Store
			e.Opts.Teacher = teacher
		}
		if setup != nil {
			setup(e)
		}
	})
	jsonAPI, err := api.New(api.Options{Ops: e.Ops})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Ops: e.Ops})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	jsonAPI.Mount(mux)
	mux.Handle("/", c)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &consoleEnv{Env: e, Client: admintest.Client{T: t, Srv: srv}, t: t, console: c, srv: srv, teacher: teacher}
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func (e *consoleEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t.(*testing.T), base: e.srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var (
	reForm = regexp.MustCompile(`name="form" value="([^"]+)"`)
	reCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// get fetches path and returns status, body and the response.
func (b *browser) get(path string) (int, string, *http.Response) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := reCSRF.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, string(body), resp
}

// post sends a form with extra headers ("Name: value").
func (b *browser) post(path string, form url.Values, headers ...string) (int, string, *http.Response) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

// signIn signs in with token and loads the overview, which sets csrf.
func (b *browser) signIn(token string) {
	b.t.Helper()
	code, body, _ := b.get("/login")
	m := reForm.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("GET /login: got %d without a form value, want 200 with one", code)
	}
	code, _, resp := b.post("/login", url.Values{"form": {m[1]}, "token": {token}, "next": {"/"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("POST /login: got %d to %q, want 303 to /", code, resp.Header.Get("Location"))
	}
	if code, _, _ := b.get("/"); code != http.StatusOK {
		b.t.Fatalf("GET / after sign-in: got %d, want 200", code)
	}
	if b.csrf == "" {
		b.t.Fatal("no CSRF token on the overview page")
	}
}

// isLocked reports whether the target is locked now.
func (e *consoleEnv) isLocked(kind identity.Kind, domain, name string) bool {
	return e.IsLocked(kind, domain, name)
}
