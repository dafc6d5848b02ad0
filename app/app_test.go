package app

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/testutil"
)

// trialHash is the argon2id hash of "trial-password" from the example
// configuration.
const trialHash = "$argon2id$v=19$m=65536,t=3,p=2$DlxgbKFuaNUPUbj/nt9lfg$zvHLdtXbewiCIB4BZUP9jNRx/vxak3BLLCN+jbH+07g"

// testConfig writes a configuration relaying to nextHop with listeners on
// port 0 and returns its path.
func testConfig(t testing.TB, nextHop string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	y := fmt.Sprintf(`hostname: outguard.test
data_dir: %s
log: {level: warn}
listeners:
  - {name: submission, address: "127.0.0.1:0", tls: starttls}
  - {name: loopback, address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}
next_hop: {type: smtp, address: %q, pool_size: 4}
domains:
  - name: out.example.net
    users:
      - name: trial
        password_hash: %q
admin: {address: "127.0.0.1:0"}
%s`, filepath.Join(dir, "data"), nextHop, trialHash, extra)
	p := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startApp(t testing.TB, path string) *App {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a
}

func send(t *testing.T, addr, user, pass string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return err
	}
	return c.SendMail("web@out.example.net", []string{"rcpt@example.org"}, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
}

func TestSwaksOverSTARTTLS(t *testing.T) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatal("swaks not installed and OUTGUARD_REQUIRE_EXTERNAL is set")
		}
		t.Skip("swaks not installed (apt-get install swaks); set OUTGUARD_REQUIRE_EXTERNAL to make this fail")
	}
	nh := testutil.StartNextHop(t)
	a := startApp(t, testConfig(t, nh.Addr, ""))
	out, err := exec.Command(swaks, "--server", a.SMTPAddrs()[0].String(), "--tls",
		"--auth", "LOGIN", "--auth-user", "trial", "--auth-password", "trial-password",
		"--from", "web@out.example.net", "--to", "rcpt@example.org",
		"--header", "Subject: swaks test", "--body", "relayed by swaks").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "<-  250 ") || !strings.Contains(string(out), "(id ") {
		t.Errorf("swaks transcript lacks the final 250 with the id:\n%s", out)
	}
	d := nh.WaitDeliveries(1, 5*time.Second)
	if len(d) != 1 || !strings.Contains(string(d[0].Data), "relayed by swaks") || !strings.Contains(string(d[0].Data), "with ESMTPSA") {
		t.Fatalf("next hop got %d deliveries, want the swaks message relayed over TLS", len(d))
	}
}

func TestReload(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	rewrite(t, path, defaultAdminLine, adminWithTokens(t, ""))
	a := startApp(t, path)
	smtpAddr := a.SMTPAddrs()[1].String()
	admin := "http://" + a.AdminAddr().String()
	if err := send(t, smtpAddr, "trial", "trial-password"); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	orig, _ := os.ReadFile(path)

	// A bad file keeps the running configuration.
	os.WriteFile(path, append(orig, []byte("bogus_key: 1\n")...), 0o600)
	code, body := postReload(t, http.DefaultClient, admin+"/-/reload", "trial-token", nil, nil)
	if code != http.StatusBadGateway || !strings.Contains(body, `unknown key \"bogus_key\"`) {
		t.Errorf("bad reload: %d %s, want 502 naming the key", code, body)
	}
	if err := send(t, smtpAddr, "trial", "trial-password"); err != nil {
		t.Errorf("after bad reload: %v, want the old config still working", err)
	}

	// A good file adds a user.
	good := strings.Replace(string(orig), "      - name: trial\n", "      - name: second\n        password_hash: \""+trialHash+"\"\n      - name: trial\n", 1)
	os.WriteFile(path, []byte(good), 0o600)
	if code, body := postReload(t, http.DefaultClient, admin+"/-/reload", "trial-token", nil, nil); code != http.StatusOK {
		t.Fatalf("good reload: %d %s", code, body)
	}
	if err := send(t, smtpAddr, "second", "trial-password"); err != nil {
		t.Errorf("new user after reload: %v", err)
	}
	if n := len(nh.Received()); n != 3 {
		t.Errorf("next hop got %d, want 3", n)
	}
}

func TestTrialCredentialsRefusedOffLoopback(t *testing.T) {
	path := testConfig(t, "127.0.0.1:1", "")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), `{name: submission, address: "127.0.0.1:0"`, `{name: submission, address: "0.0.0.0:0"`, 1)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), "trial password") {
		t.Errorf("New = %v, want a refusal naming the trial password", err)
	}
}

// TestExampleConfigRuns starts the shipped example configuration (on port
// 0, in a temporary data folder) and relays a message into the capture
// folder, as the README's first command does.
func TestExampleConfigRuns(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "testdata", "outguard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.NextHop.CaptureDir = filepath.Join(dir, "capture")
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Admin.Address = "127.0.0.1:0"
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	c, err := smtp.DialStartTLS(a.SMTPAddrs()[0].String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("web@out.example.net", []string{"rcpt@example.org"}, strings.NewReader("Subject: t\r\nX-AuthUser: alice\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "capture", "*.eml"))
	if len(files) != 1 {
		t.Fatalf("capture folder holds %d messages, want 1", len(files))
	}
	if _, err := os.Stat(filepath.Join(dir, "tls", "selfsigned.crt")); err != nil {
		t.Errorf("self-signed certificate not made: %v", err)
	}
	resp, err := http.Get("http://" + a.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `outguard_transactions_total{outcome="accepted"} 1`) {
		t.Errorf("metrics lack the accepted transaction")
	}
}
