package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// consoleEnv is the API's test env with a console mounted beside it.
type consoleEnv struct {
	*env
	console *Console
	srv     *httptest.Server
	// teacher is the content model, nil unless made by
	// newConsoleEnvTeacher.
	teacher *fakeTeacher
}

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	return newConsoleEnvWith(t, nil, nil)
}

// newConsoleEnvCampaigns is newConsoleEnv with the fake campaigns.
func newConsoleEnvCampaigns(t *testing.T) (*consoleEnv, *fakeCampaigns) {
	t.Helper()
	var f *fakeCampaigns
	e := newConsoleEnvWith(t, nil, func(e *env) {
		f = newFakeCampaigns(e)
		e.api.opts.Campaigns = f
	})
	return e, f
}

// newConsoleEnvTeacher is newConsoleEnv with a content model to teach.
func newConsoleEnvTeacher(t *testing.T) *consoleEnv {
	t.Helper()
	return newConsoleEnvWith(t, &fakeTeacher{}, nil)
}

func newConsoleEnvWith(t *testing.T, teacher *fakeTeacher, setup func(*env)) *consoleEnv {
	t.Helper()
	e := newEnvWith(t, setup)
	if teacher != nil {
		// Set before the console's server starts: its handlers read it.
		teacher.store = e.store
		e.api.opts.Teacher = teacher
	}
	c, err := NewConsole(ConsoleOptions{API: e.api})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(APIPrefix, e.api)
	mux.Handle("/", c)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &consoleEnv{env: e, console: c, srv: srv, teacher: teacher}
}

// fakeTeacher is a ModelTeacher that records its lessons: every lesson
// moves the score by 4 and bumps the version. A stored message is read
// from and marked in the real store, as the daemon does. err, when set,
// fails every lesson.
type fakeTeacher struct {
	store *quarantine.Store

	mu      sync.Mutex
	lessons []lesson
	err     error
}

// lesson is one LearnStored call.
type lesson struct {
	id   string
	spam bool
}

var _ ModelTeacher = (*fakeTeacher)(nil)

func (f *fakeTeacher) LearnStored(ctx context.Context, id string, spam bool) (LearnResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return LearnResult{}, f.err
	}
	if _, err := f.store.Raw(id, quarantine.Actor{Name: "learn"}); err != nil {
		return LearnResult{}, fmt.Errorf("%w: %s: the message's content is not kept (%v)", ErrConflict, id, err)
	}
	f.lessons = append(f.lessons, lesson{id: id, spam: spam})
	res := LearnResult{As: "ham", Before: 1.5, After: -2.5, Version: fmt.Sprintf("seed-test+%d", len(f.lessons))}
	if spam {
		res.As, res.After = "spam", 5.5
	}
	return res, f.store.SetLearned(ctx, id, res.As)
}

func (f *fakeTeacher) LearnRaw(context.Context, []byte, bool) (LearnResult, error) {
	return LearnResult{}, errors.New("fakeTeacher: no uploads in console tests")
}

func (f *fakeTeacher) Info() (ModelInfo, error) { return ModelInfo{}, nil }
func (f *fakeTeacher) Export() ([]byte, error)  { return nil, nil }
func (f *fakeTeacher) Import([]byte) error      { return nil }
func (f *fakeTeacher) Reset() error             { return nil }

// taught returns the lessons so far.
func (f *fakeTeacher) taught() []lesson {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lesson(nil), f.lessons...)
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
	l, err := e.locks.Get(context.Background(), identity.Target{Kind: kind, Domain: domain, Name: name})
	return err == nil && l.Active(e.clock.Now())
}
