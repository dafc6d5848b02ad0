package app

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/internal/tlsutil"
	"golang.org/x/crypto/bcrypt"
)

const defaultAdminLine = `admin: {address: "127.0.0.1:0"}`

// adminWithTokens is the admin section with the token trial-token of
// scope all (named ops) and the token domain-token scoped to
// out.example.net (named domainops), plus extra lines.
func adminWithTokens(t testing.TB, extra string) string {
	t.Helper()
	// The lowest bcrypt cost keeps the checks after each reload, which
	// starts a new token cache, fast.
	hash := func(secret string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	// The reload tests probe with tokens not (yet) configured, many
	// times: the sign-in throttle (docs/config-admin.md) is kept out of
	// their way.
	return `admin:
  address: "127.0.0.1:0"
  sign_in_throttle: {failures: 1000}
` + extra + `  tokens:
    - {name: ops, hash: "` + hash("trial-token") + `", scope: all}
    - {name: domainops, hash: "` + hash("domain-token") + `", scope: out.example.net}`
}

// rewrite replaces old with new in the file at path, failing if old is
// not there.
func rewrite(t testing.TB, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s lacks %q", path, old)
	}
	writeAtomic(t, path, bytes.Replace(b, []byte(old), []byte(new), 1))
}

// writeAtomic replaces the file at path as a certificate renewal tool or
// a configuration manager does: write aside, then rename.
func writeAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// postReload sends POST url with the optional bearer token and headers
// and returns the status and body.
func postReload(t testing.TB, client *http.Client, url, token string, body io.Reader, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadEndpointAuthorisation checks POST /-/reload against a running
// outguard: without a token, with a domain token, or as a cross-site
// browser form it reloads nothing (a user and a token added to the file
// stay unknown); with a token of scope all it reloads, and the audit
// trail names the token.
func TestReloadEndpointAuthorisation(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, ""))
	a := startApp(t, path)
	smtpAddr := a.SMTPAddrs()[1].String()
	base := "http://" + a.AdminAddr().String()
	reload := base + "/-/reload"

	rewrite(t, path, "      - name: trial\n", "      - name: second\n        password_hash: \""+trialHash+"\"\n      - name: trial\n")
	h, err := bcrypt.GenerateFromPassword([]byte("new-token"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, path, "  tokens:\n", "  tokens:\n    - {name: added, hash: \""+string(h)+"\", scope: all}\n")
	// Each check is one request with the added token: cheaper than a
	// failed AUTH, which the auth-failure throttle counts.
	reloaded := func() bool { t.Helper(); return tokenWorks(t, a, "new-token") }

	form := url.Values{"token": {"trial-token"}}.Encode()
	for _, tc := range []struct {
		name   string
		token  string
		body   string
		header map[string]string
		want   int
	}{
		{"no token", "", "", nil, http.StatusUnauthorized},
		{"wrong token", "guessed-token", "", nil, http.StatusUnauthorized},
		{"token of one domain", "domain-token", "", nil, http.StatusForbidden},
		{"cross-site form post", "", form, map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://attacker.example",
			"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
		}, http.StatusForbidden},
		{"cross-site form post, Origin only", "", form, map[string]string{
			"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://attacker.example",
		}, http.StatusForbidden},
		{"cross-site fetch with the token", "trial-token", "", map[string]string{
			"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors",
		}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postReload(t, http.DefaultClient, reload, tc.token, strings.NewReader(tc.body), tc.header)
			if code != tc.want {
				t.Errorf("got %d %s, want %d", code, body, tc.want)
			}
			if reloaded() {
				t.Fatal("the configuration was reloaded")
			}
		})
	}

	code, body := postReload(t, http.DefaultClient, reload, "trial-token", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("reload with the scope-all token: %d %s", code, body)
	}
	if !reloaded() {
		t.Fatal("the token added to the file is still unknown after the reload")
	}
	if err := send(t, smtpAddr, "second", "trial-password"); err != nil {
		t.Errorf("the user added to the file after the reload: %v", err)
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/audit?action=reload", nil)
	req.Header.Set("Authorization", "Bearer trial-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var audit struct {
		Entries []struct {
			Actor, Scope, Action, Detail string
		} `json:"entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&audit); err != nil {
		t.Fatal(err)
	}
	if len(audit.Entries) != 1 || audit.Entries[0].Actor != "ops" || audit.Entries[0].Scope != "all" || audit.Entries[0].Detail != "POST /-/reload" {
		t.Errorf("audit of reloads: got %+v, want one entry by ops", audit.Entries)
	}
}

// reloadVariant is one of two configurations that differ in every part a
// reload swaps: the outgoing users (authenticator and policies) and an
// admin token (API), whose secret is "secret-" + v.
func reloadVariant(t testing.TB, base []byte, v string) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("secret-"+v), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(base), "      - name: trial\n",
		"      - name: user-"+v+"\n        password_hash: \""+trialHash+"\"\n      - name: trial\n", 1)
	y = strings.Replace(y, "  tokens:\n", "  tokens:\n    - {name: tok-"+v+", hash: \""+string(h)+"\", scope: all}\n", 1)
	return []byte(y)
}

// variantInForce names the variant each swapped part of the running App
// belongs to.
func variantInForce(a *App) (cfg, auth, policy string) {
	name := func(has func(string) bool) string {
		switch a, b := has("user-a"), has("user-b"); {
		case a && !b:
			return "a"
		case b && !a:
			return "b"
		}
		return "none or both"
	}
	cfg = name(func(u string) bool {
		for _, d := range a.Config().Domains {
			for _, cu := range d.Users {
				if cu.Name == u {
					return true
				}
			}
		}
		return false
	})
	auth = name(func(u string) bool { _, ok := a.auth.table.Load().byName[u]; return ok })
	policy = name(func(u string) bool { _, ok := a.pipeline.state.Load().users[u]; return ok })
	return cfg, auth, policy
}

// TestConcurrentReloadsConsistent runs reloads at once from every path
// (POST /-/reload, the SIGHUP path ReloadFromFile and Reload with a
// configuration) while the file alternates between two variants; after
// each round every swapped part (configuration, authenticator, policies,
// admin tokens) must be of the same variant. Run it with -race.
func TestConcurrentReloadsConsistent(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, ""))
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string][]byte{"a": reloadVariant(t, base, "a"), "b": reloadVariant(t, base, "b")}
	writeAtomic(t, path, variants["a"])
	a := startApp(t, path)
	reload := "http://" + a.AdminAddr().String() + "/-/reload"
	parsed := map[string]*config.Config{}
	for v, y := range variants {
		c, err := config.Parse(y)
		if err != nil {
			t.Fatal(err)
		}
		parsed[v] = c
	}

	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	for round := range rounds {
		var wg sync.WaitGroup
		for i, v := range []string{"a", "b", "a", "b"} {
			wg.Go(func() {
				writeAtomic(t, fmt.Sprintf("%s.%d", path, i), variants[v])
				if err := os.Rename(fmt.Sprintf("%s.%d", path, i), path); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if code, body := postReload(t, http.DefaultClient, reload, "trial-token", nil, nil); code != http.StatusOK {
					t.Errorf("POST /-/reload: %d %s", code, body)
				}
			})
			wg.Go(func() {
				if err := a.ReloadFromFile(); err != nil {
					t.Errorf("ReloadFromFile: %v", err)
				}
			})
			wg.Go(func() {
				if err := a.Reload(parsed[v]); err != nil {
					t.Errorf("Reload: %v", err)
				}
			})
		}
		wg.Wait()
		cfgV, authV, policyV := variantInForce(a)
		tokenV := "none or both"
		switch ta, tb := tokenWorks(t, a, "secret-a"), tokenWorks(t, a, "secret-b"); {
		case ta && !tb:
			tokenV = "a"
		case tb && !ta:
			tokenV = "b"
		}
		if cfgV != authV || cfgV != policyV || cfgV != tokenV || len(cfgV) != 1 {
			t.Fatalf("round %d: configuration %s, authenticator %s, policies %s, admin tokens %s: want one variant throughout",
				round, cfgV, authV, policyV, tokenV)
		}
	}
}

// tokenWorks reports whether the admin API accepts secret.
func tokenWorks(t *testing.T, a *App, secret string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr().String()+"/api/v1/locks", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// certPair makes a self-signed certificate for 127.0.0.1 and returns its
// PEM files' contents and the parsed leaf.
func certPair(t *testing.T) (crt, key []byte, leaf *x509.Certificate) {
	t.Helper()
	crt, key, err := tlsutil.SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err = x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return crt, key, leaf
}

// TestCertificatesReloaded starts outguard with certificate A on its
// STARTTLS and implicit-TLS listeners and its HTTPS admin listener, renews
// the files to certificate B and reloads: new connections see B. A broken
// renewal (garbage, or a key that does not match) fails the reload, says
// why, and B stays served. New paths in the configuration take effect on
// reload too.
func TestCertificatesReloaded(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	dir := filepath.Dir(path)
	crtFile, keyFile := filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	adminCrt, adminKey := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	crtA, keyA, leafA := certPair(t)
	for f, b := range map[string][]byte{crtFile: crtA, keyFile: keyA, adminCrt: crtA, adminKey: keyA} {
		writeAtomic(t, f, b)
	}
	rewrite(t, path, `{name: submission, address: "127.0.0.1:0", tls: starttls}`,
		fmt.Sprintf(`{name: submission, address: "127.0.0.1:0", tls: starttls, cert_file: %q, key_file: %q}
  - {name: smtps, address: "127.0.0.1:0", tls: implicit, cert_file: %q, key_file: %q}`, crtFile, keyFile, crtFile, keyFile))
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, fmt.Sprintf("  cert_file: %q\n  key_file: %q\n", adminCrt, adminKey)))
	a := startApp(t, path)
	smtpAddr, smtpsAddr := a.SMTPAddrs()[0].String(), a.SMTPAddrs()[1].String()
	base := "https://" + a.AdminAddr().String()
	// A new connection per request, so that each sees the certificate
	// served at that moment.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}}

	smtpCert := func() *x509.Certificate {
		t.Helper()
		c, err := smtp.DialStartTLS(smtpAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Noop(); err != nil {
			t.Fatal(err)
		}
		st, ok := c.TLSConnectionState()
		if !ok {
			t.Fatal("no TLS after STARTTLS")
		}
		return st.PeerCertificates[0]
	}
	smtpsCert := func() *x509.Certificate {
		t.Helper()
		c, err := smtp.DialTLS(smtpsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Noop(); err != nil {
			t.Fatal(err)
		}
		st, _ := c.TLSConnectionState()
		return st.PeerCertificates[0]
	}
	adminCert := func() *x509.Certificate {
		t.Helper()
		resp, err := client.Get(base + "/-/healthy")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0]
	}
	check := func(when string, want *x509.Certificate) {
		t.Helper()
		if got := smtpCert(); !got.Equal(want) {
			t.Errorf("%s: STARTTLS serves serial %s, want %s", when, got.SerialNumber, want.SerialNumber)
		}
		if got := smtpsCert(); !got.Equal(want) {
			t.Errorf("%s: implicit TLS serves serial %s, want %s", when, got.SerialNumber, want.SerialNumber)
		}
		if got := adminCert(); !got.Equal(want) {
			t.Errorf("%s: admin HTTPS serves serial %s, want %s", when, got.SerialNumber, want.SerialNumber)
		}
	}
	reloadOK := func() string {
		t.Helper()
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "outguard_config_last_reload_successful "); ok {
				return v
			}
		}
		t.Fatal("/metrics lacks outguard_config_last_reload_successful")
		return ""
	}
	check("at start", leafA)

	crtB, keyB, leafB := certPair(t)
	for f, b := range map[string][]byte{crtFile: crtB, keyFile: keyB, adminCrt: crtB, adminKey: keyB} {
		writeAtomic(t, f, b)
	}
	check("renewed, not reloaded", leafA)
	if code, body := postReload(t, client, base+"/-/reload", "trial-token", nil, nil); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	check("after the reload", leafB)
	if v := reloadOK(); v != "1" {
		t.Errorf("outguard_config_last_reload_successful = %s after a good reload, want 1", v)
	}

	crtC, _, _ := certPair(t)
	for _, tc := range []struct {
		name     string
		crt, key []byte
		via      string
		want     string
	}{
		{"garbage certificate over HTTP", []byte("not a certificate\n"), keyB, "http", "listener submission: certificate"},
		{"key of another certificate on SIGHUP", crtC, keyB, "sighup", "private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeAtomic(t, crtFile, tc.crt)
			writeAtomic(t, keyFile, tc.key)
			defer func() {
				writeAtomic(t, crtFile, crtB)
				writeAtomic(t, keyFile, keyB)
			}()
			var msg string
			if tc.via == "http" {
				code, body := postReload(t, client, base+"/-/reload", "trial-token", nil, nil)
				if code != http.StatusBadGateway {
					t.Errorf("reload: %d %s, want 502", code, body)
				}
				msg = body
			} else {
				err := a.ReloadFromFile()
				if err == nil {
					t.Fatal("ReloadFromFile succeeded with a broken certificate")
				}
				msg = err.Error()
			}
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "still serving the old ones") {
				t.Errorf("reload error %q, want it to contain %q", msg, tc.want)
			}
			check("after the failed reload", leafB)
			if v := reloadOK(); v != "0" {
				t.Errorf("outguard_config_last_reload_successful = %s after a failed reload, want 0", v)
			}
		})
	}

	newCrt, newKey := filepath.Join(dir, "renewed.crt"), filepath.Join(dir, "renewed.key")
	crtD, keyD, leafD := certPair(t)
	writeAtomic(t, newCrt, crtD)
	writeAtomic(t, newKey, keyD)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, path, bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(crtFile), []byte(newCrt)), []byte(keyFile), []byte(newKey)))
	if err := a.ReloadFromFile(); err != nil {
		t.Fatalf("reload with new certificate paths: %v", err)
	}
	if got := smtpCert(); !got.Equal(leafD) {
		t.Errorf("new cert_file path: STARTTLS serves serial %s, want %s", got.SerialNumber, leafD.SerialNumber)
	}
	if got := smtpsCert(); !got.Equal(leafD) {
		t.Errorf("new cert_file path: implicit TLS serves serial %s, want %s", got.SerialNumber, leafD.SerialNumber)
	}
}

// stackShows reports whether some goroutine's stack contains every one
// of parts.
func stackShows(parts ...string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(g, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestReloadWaitsForReloadInProgress holds a reload from the HTTP
// endpoint in the middle of reading its file (the configuration path is
// a FIFO, like a slow disk), starts a second reload with another
// configuration, and lets the first go on: the second waits for the
// first, so the reload that started last is the one in force, whole.
func TestReloadWaitsForReloadInProgress(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, ""))
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	varA, varB := reloadVariant(t, base, "a"), reloadVariant(t, base, "b")
	cfgStart, err := config.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	cfgB, err := config.Parse(varB)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "outguard.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	a, err := New(Options{Config: cfgStart, ConfigPath: fifo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })

	first := make(chan string, 1)
	go func() {
		code, body := postReload(t, http.DefaultClient, "http://"+a.AdminAddr().String()+"/-/reload", "trial-token", nil, nil)
		first <- fmt.Sprint(code, " ", body)
	}()
	// Opening the FIFO for writing returns once the first reload has
	// opened it: that reload is now reading its file.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- a.Reload(cfgB) }()
	// Go on once the second reload is done or waiting for the first.
	var secondErr error
	secondDone := false
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case secondErr = <-second:
			secondDone = true
		default:
		}
		if secondDone || stackShows("(*App).Reload(", "Mutex).Lock") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second reload neither finished nor waits")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := w.Write(varA); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := <-first; !strings.HasPrefix(got, "200 ") {
		t.Errorf("first reload: %s", got)
	}
	if !secondDone {
		secondErr = <-second
	}
	if secondErr != nil {
		t.Errorf("second reload: %v", secondErr)
	}
	cfgV, authV, policyV := variantInForce(a)
	tokenA, tokenB := tokenWorks(t, a, "secret-a"), tokenWorks(t, a, "secret-b")
	if cfgV != "b" || authV != "b" || policyV != "b" || tokenA || !tokenB {
		t.Errorf("in force: configuration %s, authenticator %s, policies %s, token a %v, token b %v; want all of b, the reload that started last",
			cfgV, authV, policyV, tokenA, tokenB)
	}
}
