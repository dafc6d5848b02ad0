package app

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/outguard/outguard/config"
)

func exampleConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "testdata", "outguard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.NextHop.CaptureDir = filepath.Join(dir, "capture")
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Admin.Address = "127.0.0.1:0"
	return cfg
}

// The example configuration's console account signs in over HTTP with
// its name and password.
func TestExampleAccountSignsIn(t *testing.T) {
	a, err := New(Options{Config: exampleConfig(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	base := "http://" + a.AdminAddr().String()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signIn := func(password string) int {
		resp, err := c.Get(base + "/login")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`name="form" value="([^"]+)"`).FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("no sign-in form: %s", b)
		}
		resp, err = c.PostForm(base+"/login", url.Values{"form": {m[1]}, "name": {"desk"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := signIn("wrong"); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: got %d, want 401", st)
	}
	if st := signIn(trialDeskPassword); st != http.StatusSeeOther {
		t.Fatalf("desk with its password: got %d, want 303", st)
	}
}

// The example account's password is refused when the admin listener is
// not on loopback.
func TestExampleAccountRefusedOffLoopback(t *testing.T) {
	cfg := exampleConfig(t)
	cfg.Admin.Tokens = nil
	cfg.Admin.Address = "0.0.0.0:0"
	if _, err := New(Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), trialDeskPassword) {
		t.Fatalf("New = %v, want a refusal naming the example password", err)
	}
}
