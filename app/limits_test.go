package app

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/argon2"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/outguard/outguard/internal/testutil"
)

// argonHash hashes pw with argon2id at memory m KiB and time t, with a
// fixed salt: cheap parameters keep the tests fast where the cost itself
// is not under test.
func argonHash(pw string, m, t uint32) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pw), salt, t, m, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=1$%s$%s", m, t, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// wrongAuth dials addr from the loopback address local, tries AUTH PLAIN
// with a wrong password and returns the reply code. It may run outside
// the test's goroutine.
func wrongAuth(addr, local string) string {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	tc := textproto.NewConn(c)
	if _, _, err := tc.ReadResponse(220); err != nil {
		return "greeting: " + err.Error()
	}
	tc.Cmd("EHLO flood.test")
	if _, _, err := tc.ReadResponse(250); err != nil {
		return "EHLO: " + err.Error()
	}
	tc.Cmd("AUTH PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00flood\x00wrong")))
	code, _, err := tc.ReadResponse(0)
	if code == 0 {
		return "AUTH: " + err.Error()
	}
	return fmt.Sprint(code)
}

func gaugeOrCounter(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestAuthFloodOverSMTP: parallel wrong passwords from one client run no
// more password checks than auth_failures.max, and another client is
// served meanwhile.
func TestAuthFloodOverSMTP(t *testing.T) {
	nh := testutil.StartNextHop(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "outguard.yaml")
	y := fmt.Sprintf(`hostname: outguard.test
data_dir: %s
log: {level: warn}
listeners:
  - {name: loopback, address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}
limits: {max_connections: 400, max_connections_per_ip: 300}
next_hop: {type: smtp, address: %q, pool_size: 4}
domains:
  - name: out.example.net
    users:
      - {name: trial, password_hash: %q}
      - {name: flood, password_hash: %q}
admin: {address: "127.0.0.1:0"}
`, filepath.Join(dir, "data"), nh.Addr, argonHash("trial-password", 8192, 1), argonHash("right", 8192, 1))
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, path)
	addr := a.SMTPAddrs()[0].String()

	const flood = 40
	replies := make(chan string, flood)
	for range flood {
		go func() { replies <- wrongAuth(addr, "127.0.0.1") }()
	}
	other := sendFrom(t, "127.0.0.2", addr, "trial", "trial-password")
	codes := map[string]int{}
	for range flood {
		codes[<-replies]++
	}
	if other != nil {
		t.Errorf("another client during the flood: %v", other)
	}
	if codes["535"]+codes["421"] != flood {
		t.Errorf("replies to the flood: %v, want only 535 and 421", codes)
	}
	if got := gaugeOrCounter(t, a, "outguard_smtp_auth_failures_total"); got != 5 {
		t.Errorf("%v password checks failed, want 5 (auth_failures.max): the others must not run", got)
	}
}

// sendFrom relays one message from the loopback address local.
func sendFrom(t *testing.T, local, addr, user, pass string) error {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return err
	}
	return c.SendMail("web@out.example.net", []string{"rcpt@example.org"}, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
}

// TestDecoyHashMatchesTheUsers: unknown user names are checked against a
// decoy of the algorithm and cost most users have, so that they take as
// long to refuse as a wrong password.
func TestDecoyHashMatchesTheUsers(t *testing.T) {
	argonA, argonB := argonHash("a", 8192, 2), argonHash("b", 8192, 2)
	bcryptC, err := passwd.HashBcrypt("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		hashes []string
		want   string
	}{
		{"argon2id users", []string{argonA, argonB}, passwd.Kind(argonA)},
		{"mostly argon2id", []string{argonA, bcryptC, argonB}, passwd.Kind(argonA)},
		{"mostly bcrypt", []string{bcryptC, argonA, bcryptC}, passwd.Kind(bcryptC)},
		{"network users only", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Domains: []config.Domain{{Name: "out.example.net"}}}
			for i, h := range tc.hashes {
				cfg.Domains[0].Users = append(cfg.Domains[0].Users, config.User{Name: fmt.Sprint("u", i), PasswordHash: h})
			}
			u, err := buildUsers(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := passwd.Kind(u.decoy); got != tc.want || u.decoyKind != tc.want {
				t.Errorf("decoy kind %q (recorded %q), want %q", got, u.decoyKind, tc.want)
			}
			for _, h := range tc.hashes {
				if u.decoy == h {
					t.Errorf("the decoy is a user's own hash")
				}
			}
			// A reload with the same kind keeps the decoy.
			again, err := buildUsers(cfg, u)
			if err != nil {
				t.Fatal(err)
			}
			if again.decoy != u.decoy {
				t.Errorf("decoy made again on reload with the same kind of hashes")
			}
		})
	}
}

// TestFeedbackListenerFloodLeavesSubmissionAlone: a feedback listener has
// small connection limits of its own by default; flooding it does not
// refuse the submission listener, and its idle connections are closed
// before MAIL after its own timeout.
func TestFeedbackListenerFloodLeavesSubmissionAlone(t *testing.T) {
	nh := testutil.StartNextHop(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "outguard.yaml")
	y := fmt.Sprintf(`hostname: outguard.test
data_dir: %s
log: {level: warn}
listeners:
  - {name: submission, address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}
  - {name: feedback, address: "127.0.0.1:0", tls: none, feedback: true, idle_timeout_before_mail: 1s}
limits: {max_connections: 8, max_connections_per_ip: 8}
next_hop: {type: smtp, address: %q, pool_size: 4}
domains:
  - name: out.example.net
    users:
      - {name: trial, password_hash: %q}
arf: {feedback_address: fbl@outguard.test}
admin: {address: "127.0.0.1:0"}
`, filepath.Join(dir, "data"), nh.Addr, argonHash("trial-password", 8192, 1))
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, path)
	sub, fbl := a.SMTPAddrs()[0].String(), a.SMTPAddrs()[1].String()

	greetings := map[string]int{}
	var open []*textproto.Conn
	for range 12 {
		c, err := net.Dial("tcp", fbl)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tc := textproto.NewConn(c)
		code, _, _ := tc.ReadResponse(0)
		greetings[fmt.Sprint(code)]++
		if code == 220 {
			open = append(open, tc)
		}
	}
	if greetings["220"] != config.DefaultFeedbackMaxConnectionsPerIP || greetings["421"] != 12-config.DefaultFeedbackMaxConnectionsPerIP {
		t.Errorf("feedback listener greetings: %v, want %d × 220 and the rest 421", greetings, config.DefaultFeedbackMaxConnectionsPerIP)
	}
	if err := send(t, sub, "trial", "trial-password"); err != nil {
		t.Errorf("submission while the feedback listener is full: %v", err)
	}
	// The idle feedback connections are closed before MAIL.
	for _, tc := range open {
		if code, msg, _ := tc.ReadResponse(0); code != 421 {
			t.Errorf("idle feedback connection got %d %s, want 421 (idle timeout)", code, msg)
		}
	}
}
