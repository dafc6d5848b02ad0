package app

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// End-to-end checks of the plain Postfix and plain Exim recipes of
// docs/identity-recipes.md with the real MTA: a "script" running as the
// unprivileged user nobody submits a message carrying a forged identity
// header; the MTA adds the real one as the recipe says and relays to a
// running outguard; the message log must show the real identity.
//
// They need root (a private Postfix instance, a private mount namespace for
// the MTA's default configuration path, submission as another user) and
// the MTA. Postfix is a package; Exim conflicts with it as a package, so
// .ci/exim.sh unpacks Debian's exim4-daemon-light and exports OUTGUARD_EXIM.

// scriptUID is the uid the "script" runs as: nobody.
const scriptUID = 65534

// missing skips, or fails when OUTGUARD_REQUIRE_EXTERNAL is set.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
		t.Fatalf("%s and OUTGUARD_REQUIRE_EXTERNAL is set", msg)
	}
	t.Skipf("%s; set OUTGUARD_REQUIRE_EXTERNAL to make this fail", msg)
}

// needRootTools checks what every MTA test needs besides the MTA.
func needRootTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "real-MTA test needs root (private MTA instance, submission as user nobody)")
	}
	for _, c := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			missing(t, "%s not found (package util-linux/mount)", c)
		}
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		missing(t, "cannot create a mount namespace (unshare -m: %v %s)", err, out)
	}
}

// mtaTempDir is a directory the MTA's unprivileged processes can traverse.
func mtaTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// waitRecord waits for the next hop to hold n messages (the MTA relays in
// the background) and returns the newest message log record; diag is shown
// when nothing arrives.
func (e *env) waitRecord(n int, diag func() string) {
	e.t.Helper()
	if got := e.nh.WaitDeliveries(n, 60*time.Second); len(got) < n {
		e.t.Fatalf("next hop got %d messages, want %d; MTA log:\n%s", len(got), n, diag())
	}
}

// outguardSMTP is the address of the env's listener without TLS.
func (e *env) outguardSMTP() (string, string) {
	host, port, err := net.SplitHostPort(e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return host, port
}

// ---- Postfix ----

type postfixMTA struct {
	dir, conf string
	// smtpd is the address of the instance's SMTP server, "" for none.
	smtpd string
}

// startPostfix starts a private Postfix instance (own config_directory,
// queue and data directories) relaying to host:port. With sasl it also
// runs an SMTP server on a free loopback port, where that login (user
// "alice@web1.hosting.test", password "secret") may relay with SMTP AUTH
// and 127.0.0.1 may relay without, and which reports the login in its
// Received: header (smtpd_sasl_authenticated_header); else it listens
// nowhere.
func startPostfix(t *testing.T, host, port string, sasl bool) *postfixMTA {
	t.Helper()
	if _, err := exec.LookPath("postfix"); err != nil {
		missing(t, "postfix not installed (apt-get install postfix)")
	}
	needRootTools(t)
	postconf := func(name string) string {
		out, err := exec.Command("postconf", "-h", name).Output()
		if err != nil {
			t.Fatalf("postconf %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	cmdDir, daemonDir := postconf("command_directory"), postconf("daemon_directory")
	p := &postfixMTA{dir: mtaTempDir(t, "outguard-postfix-")}
	p.conf = filepath.Join(p.dir, "conf")
	bin := filepath.Join(p.dir, "bin")
	for _, d := range []string{p.conf, bin, filepath.Join(p.dir, "queue"), filepath.Join(p.dir, "data")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The command directory: Postfix's commands, but a postdrop without
	// set-gid, so that a maildrop open to all (mode 1733, Postfix's
	// set-gid-less layout) takes the unprivileged user's mail.
	entries, err := os.ReadDir(cmdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "post") && name != "sendmail" {
			continue
		}
		if name == "postdrop" {
			b, err := os.ReadFile(filepath.Join(cmdDir, name))
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(bin, name), string(b), 0o755)
			continue
		}
		if err := os.Symlink(filepath.Join(cmdDir, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", filepath.Join(p.dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	mustWrite(t, filepath.Join(p.conf, "main.cf"), fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
command_directory = %[1]s/bin
daemon_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = web1.hosting.test
mydestination =
relayhost = [%[3]s]:%[4]s
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtputf8_enable = no
alias_maps =
alias_database =
local_transport = error:no local delivery here
`, p.dir, daemonDir, host, port), 0o644)
	master := ""
	if sasl {
		saslpasswd, err := exec.LookPath("saslpasswd2")
		if err != nil {
			missing(t, "saslpasswd2 not found (apt-get install sasl2-bin)")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.smtpd = ln.Addr().String()
		ln.Close()
		db := filepath.Join(p.dir, "sasldb2")
		cmd := exec.Command(saslpasswd, "-p", "-c", "-f", db, "-u", "web1.hosting.test", "alice")
		cmd.Stdin = strings.NewReader("secret")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("saslpasswd2: %v %s", err, out)
		}
		if out, err := exec.Command("chown", "postfix", db).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
		// Debian's Postfix reads $config_directory/sasl/smtpd.conf.
		if err := os.Mkdir(filepath.Join(p.conf, "sasl"), 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(p.conf, "sasl", "smtpd.conf"), "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: "+db+"\nmech_list: PLAIN LOGIN\n", 0o644)
		f, err := os.OpenFile(filepath.Join(p.conf, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, `smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = %s/sasl
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
mynetworks = 127.0.0.1/32
smtpd_relay_restrictions = permit_sasl_authenticated, permit_mynetworks, reject
`, p.conf)
		f.Close()
		master = p.smtpd + " inet n - n - - smtpd\n"
	}
	mustWrite(t, filepath.Join(p.conf, "master.cf"), master+`pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, 0o644)
	if out, err := exec.Command("postfix", "-c", p.conf, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, p.log())
	}
	t.Cleanup(func() { exec.Command("postfix", "-c", p.conf, "stop").Run() })
	for d, mode := range map[string]os.FileMode{"maildrop": 0o1733, "public": 0o711} {
		if err := os.Chmod(filepath.Join(p.dir, "queue", d), mode); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p *postfixMTA) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// sendmail submits msg as uid with Postfix's sendmail, as PHP's mail()
// does. sendmail only reads the default configuration directory for an
// unprivileged user, so the instance's is mounted there in a private mount
// namespace.
func (p *postfixMTA) sendmail(t *testing.T, uid int, msg string) {
	t.Helper()
	script := fmt.Sprintf("mount --bind %s /etc/postfix && exec setpriv --reuid=%d --regid=%d --clear-groups /usr/sbin/sendmail -f script@customer.example rcpt@example.org", p.conf, uid, uid)
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail as uid %d: %v\n%s\n%s", uid, err, out, p.log())
	}
	exec.Command("postkick", "-c", p.conf, "public", "pickup", "W").Run()
}

func TestRecipePostfixRealMTA(t *testing.T) {
	if _, err := exec.LookPath("postfix"); err != nil {
		missing(t, "postfix not installed (apt-get install postfix)")
	}
	needRootTools(t)
	e := recipeEnv(t, recipe(t, "postfix"))
	host, port := e.outguardSMTP()
	p := startPostfix(t, host, port, false)
	// The script writes a Received: line and an X-AuthUser of its own.
	msg := "Received: by web1.hosting.test (Postfix, from userid 1234)\n" +
		"Received: from client.example (client.example [192.0.2.9])\n\t(Authenticated sender: innocent-neighbour)\n\tby web1.hosting.test (Postfix) with ESMTPSA id 1\n" +
		"X-AuthUser: innocent-neighbour\nFrom: shop@customer.example\nTo: rcpt@example.org\nSubject: order\n\nbody\n"
	p.sendmail(t, scriptUID, msg)
	e.waitRecord(1, p.log)
	r := e.lastRecord()
	if r.Identity != fmt.Sprint(scriptUID) || r.IdentitySource != "header Received" {
		t.Errorf("identity %q from %q (reason %q), want %d from the topmost Received", r.Identity, r.IdentitySource, r.IdentityReason, scriptUID)
	}
	// What Postfix relayed: its own Received on top, the script's below.
	d := e.nh.Received()[0].Data
	top := fmt.Sprintf("(Postfix, from userid %d)", scriptUID)
	if i, j := bytes.Index(d, []byte(top)), bytes.Index(d, []byte("from userid 1234")); i < 0 || j < 0 || i > j {
		t.Errorf("relayed message does not have Postfix's Received above the script's:\n%s", d)
	}
}

// ---- Exim ----

// eximBinary returns the Exim binary: OUTGUARD_EXIM (set by .ci/exim.sh),
// else exim4 or exim on PATH.
func eximBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OUTGUARD_EXIM")
	if bin == "" {
		for _, n := range []string{"exim4", "exim"} {
			if p, err := exec.LookPath(n); err == nil {
				bin = p
				break
			}
		}
	}
	if bin == "" {
		missing(t, "Exim not found: run .ci/exim.sh and export its OUTGUARD_EXIM")
	}
	needRootTools(t)
	return bin
}

// eximConfigPath is where Debian's Exim build looks for its configuration
// after /etc/exim4/exim4.conf. An unprivileged caller cannot name another
// with -C without Exim dropping its privileges, so the test mounts a tmpfs
// over /var/lib in a private mount namespace and puts its file there.
const eximConfigPath = "/var/lib/exim4/config.autogenerated"

// eximConfig writes an Exim configuration in dir relaying remote mail to
// host:port through transport (a recipe's transport section) and returns
// its path. With daemonPort it also takes SMTP on 127.0.0.1:daemonPort,
// where user LOGIN with password "secret" may relay after AUTH PLAIN (its
// $authenticated_id is LOGIN).
func eximConfig(t *testing.T, bin, dir, transport, host, port, daemonPort string) string {
	t.Helper()
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "Debian-exim:Debian-exim", spool).CombinedOutput(); err != nil {
		t.Fatalf("chown spool (does user Debian-exim exist? .ci/exim.sh makes it): %v %s", err, out)
	}
	tr := filepath.Join(dir, "transport.conf")
	mustWrite(t, tr, transport, 0o644)
	daemon, auth := "", ""
	if daemonPort != "" {
		daemon = fmt.Sprintf(`daemon_smtp_ports = %s
local_interfaces = 127.0.0.1
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  accept authenticated = *
  deny
`, daemonPort)
		auth = `
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if eq{$auth3}{secret}}
  server_set_id = $auth2
`
	}
	conf := filepath.Join(dir, "exim.conf")
	mustWrite(t, conf, fmt.Sprintf(`exim_path = %s
spool_directory = %s
log_file_path = %s/%%slog
primary_hostname = web2.hosting.test
domainlist local_domains = @
host_lookup =
rfc1413_hosts =
keep_environment =
%s
begin routers
outbound:
  driver = manualroute
  domains = ! +local_domains
  transport = outguard_smtp
  route_list = * %s::%s byname
  self = send

begin transports
.include %s
  allow_localhost
%s`, bin, spool, spool, daemon, host, port, tr, auth), 0o644)
	if out, err := exec.Command(bin, "-C", conf, "-bV").CombinedOutput(); err != nil {
		t.Fatalf("exim -bV: %v\n%s", err, out)
	}
	return conf
}

// eximSend submits msg as uid with `exim -odi` (delivered before Exim
// returns) through a configuration whose transport to outguard is
// transport.
func eximSend(t *testing.T, bin, dir, transport, host, port string, uid int, msg string) {
	t.Helper()
	conf := eximConfig(t, bin, dir, transport, host, port, "")
	script := fmt.Sprintf("mount -t tmpfs tmpfs /var/lib && mkdir -p %s && cp %s %s && exec setpriv --reuid=%d --regid=%d --clear-groups %s -odi -f script@customer.example rcpt@example.org",
		filepath.Dir(eximConfigPath), conf, eximConfigPath, uid, uid, bin)
	cmd := exec.Command("unshare", "-m", "sh", "-c", script)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("exim as uid %d: %v\n%s\n%s", uid, err, out, eximLog(dir)())
	}
}

// eximDaemon runs Exim's SMTP server (in the foreground, stopped at the
// end of the test) with eximConfig's AUTH set-up, and returns its address.
func eximDaemon(t *testing.T, bin, dir, transport, host, port string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, dport, _ := net.SplitHostPort(addr)
	ln.Close()
	conf := eximConfig(t, bin, dir, transport, host, port, dport)
	cmd := exec.Command(bin, "-C", conf, "-bdf", "-odi")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if i == 100 {
			t.Fatalf("exim daemon not answering on %s: %v\n%s\n%s", addr, err, out.String(), eximLog(dir)())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eximLog(dir string) func() string {
	return func() string {
		a, _ := os.ReadFile(filepath.Join(dir, "spool", "mainlog"))
		b, _ := os.ReadFile(filepath.Join(dir, "spool", "paniclog"))
		return string(a) + string(b)
	}
}

// forgedX is what the script writes: the identity header naming someone
// else, above the rest of its header.
const forgedX = "X-AuthUser: innocent-neighbour\nFrom: shop@customer.example\nTo: rcpt@example.org\nSubject: order\n\nbody\n"

func TestRecipeEximRealMTA(t *testing.T) {
	bin := eximBinary(t)
	transport, err := os.ReadFile(filepath.Join(recipesDir, "exim-transport.conf"))
	if err != nil {
		t.Fatal(err)
	}
	rules := recipe(t, "exim")
	noRemove := strings.Replace(string(transport), "  headers_remove = X-AuthUser\n", "", 1)
	if noRemove == string(transport) {
		t.Fatal("exim-transport.conf has no headers_remove line to take out")
	}
	ruleFor := func(occ string) string {
		return strings.Replace(rules, "    occurrence: last\n", "    occurrence: "+occ+"\n", 1)
	}
	cases := []struct {
		name, transport, rules string
		want, wantReason       string
		wantNot                string // what the relayed message must not carry
	}{
		// The recipe: Exim removes the script's copy and appends its own;
		// outguard strips it before relaying.
		{"recipe", string(transport), rules, "nobody", "", "X-AuthUser"},
		// Without headers_remove the script's copy stays above Exim's.
		{"without headers_remove, last", noRemove, ruleFor("last"), "nobody", "", ""},
		{"without headers_remove, only", noRemove, ruleFor("only"), "", "different values", ""},
		// The wrong setting for an MTA that appends: the forgery wins.
		{"without headers_remove, first (wrong setting)", noRemove, ruleFor("first"), "innocent-neighbour", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := recipeEnv(t, strings.Replace(tc.rules, "strip_identity_header: true\n", "strip_identity_header: "+fmt.Sprint(tc.wantNot != "")+"\n", 1))
			dir := mtaTempDir(t, "outguard-exim-")
			host, port := e.outguardSMTP()
			eximSend(t, bin, dir, tc.transport, host, port, scriptUID, forgedX)
			e.waitRecord(1, eximLog(dir))
			r := e.lastRecord()
			if r.Identity != tc.want || !strings.Contains(r.IdentityReason, tc.wantReason) {
				t.Errorf("identity %q (source %q, reason %q), want %q (reason containing %q)", r.Identity, r.IdentitySource, r.IdentityReason, tc.want, tc.wantReason)
			}
			d := e.nh.Received()[0].Data
			if tc.wantNot != "" && bytes.Contains(d, []byte(tc.wantNot)) {
				t.Errorf("relayed message carries %q:\n%s", tc.wantNot, d)
			}
			if tc.wantNot == "" {
				// Exim's copy is the bottom one, below the script's.
				i, j := bytes.Index(d, []byte("X-AuthUser: innocent-neighbour")), bytes.Index(d, []byte("X-AuthUser: nobody"))
				if i < 0 || j < 0 || j < i {
					t.Errorf("relayed message does not have Exim's X-AuthUser below the script's:\n%s", d)
				}
			}
		})
	}
}

func TestRecipeDirectAdminRealMTA(t *testing.T) {
	bin := eximBinary(t)
	transport, err := os.ReadFile(filepath.Join(recipesDir, "directadmin-transport.conf"))
	if err != nil {
		t.Fatal(err)
	}
	e := recipeEnv(t, recipe(t, "directadmin"))
	dir := mtaTempDir(t, "outguard-exim-")
	host, port := e.outguardSMTP()
	eximSend(t, bin, dir, string(transport), host, port, scriptUID, strings.Replace(forgedX, "X-AuthUser", "X-Authenticated-Id", 1))
	e.waitRecord(1, eximLog(dir))
	if r := e.lastRecord(); r.Identity != "nobody" || r.IdentitySource != "header X-Authenticated-Id" {
		t.Errorf("identity %q from %q (reason %q), want nobody from header X-Authenticated-Id", r.Identity, r.IdentitySource, r.IdentityReason)
	}
	if d := e.nh.Received()[0].Data; bytes.Contains(d, []byte("X-Authenticated-Id")) {
		t.Errorf("relayed message still carries X-Authenticated-Id:\n%s", d)
	}
}

// TestRecipePostfixRealMTASASL: mail submitted to Postfix's SMTP server
// with SMTP AUTH is known by its login, whatever Received: lines the
// client wrote; without AUTH, nothing the client controls (its Received:
// lines, a quoted recipient that Postfix copies into its own header)
// passes for a login.
func TestRecipePostfixRealMTASASL(t *testing.T) {
	if _, err := exec.LookPath("postfix"); err != nil {
		missing(t, "postfix not installed (apt-get install postfix)")
	}
	needRootTools(t)
	e := recipeEnv(t, recipe(t, "postfix"))
	host, port := e.outguardSMTP()
	p := startPostfix(t, host, port, true)
	forged := "Received: from client.example (client.example [192.0.2.9])\r\n\t(Authenticated sender: innocent-neighbour)\r\n\tby web1.hosting.test (Postfix) with ESMTPSA id 1\r\n" +
		"Received: by web1.hosting.test (Postfix, from userid 1234)\r\n\tid 2\r\n" +
		"From: shop@customer.example\r\nSubject: order\r\n\r\nbody\r\n"
	submit := func(auth bool, rcpt string) {
		t.Helper()
		c, err := smtp.Dial(p.smtpd)
		if err != nil {
			t.Fatalf("%v\n%s", err, p.log())
		}
		defer c.Close()
		if err := c.Hello("client.example"); err != nil {
			t.Fatal(err)
		}
		if auth {
			if err := c.Auth(sasl.NewPlainClient("", "alice@web1.hosting.test", "secret")); err != nil {
				t.Fatalf("AUTH: %v\n%s", err, p.log())
			}
		}
		if err := c.SendMail("shop@customer.example", []string{rcpt}, strings.NewReader(forged)); err != nil {
			t.Fatalf("submission: %v\n%s", err, p.log())
		}
	}

	submit(true, "rcpt@example.org")
	e.waitRecord(1, p.log)
	if r := e.lastRecord(); r.Identity != "alice@web1.hosting.test" || r.IdentitySource != "header Received" {
		t.Errorf("with AUTH: identity %q from %q (reason %q), want the login alice@web1.hosting.test", r.Identity, r.IdentitySource, r.IdentityReason)
	}
	if d := e.nh.Received()[0].Data; !bytes.Contains(d, []byte("(Authenticated sender: alice@web1.hosting.test)")) {
		t.Errorf("relayed message lacks Postfix's Authenticated sender:\n%s", d)
	}

	submit(false, `"(Authenticated sender: innocent-neighbour)"@example.org`)
	e.waitRecord(2, p.log)
	if r := e.lastRecord(); r.Identity != "" {
		t.Errorf("without AUTH: identity %q from %q, want none", r.Identity, r.IdentitySource)
	}
	if d := e.nh.Received()[1].Data; !bytes.Contains(d, []byte(`for <"(Authenticated sender: innocent-neighbour)"@example.org>`)) {
		t.Logf("Postfix did not copy the quoted recipient into its Received: header (the case is weaker than meant):\n%s", d)
	}
}

// TestRecipeEximRealMTAAuth: a mailbox login over SMTP AUTH is the
// identity, through the Exim and the DirectAdmin transports, whatever copy
// of the header the client wrote.
func TestRecipeEximRealMTAAuth(t *testing.T) {
	bin := eximBinary(t)
	for _, tc := range []struct{ recipe, header string }{
		{"exim", "X-AuthUser"},
		{"directadmin", "X-Authenticated-Id"},
	} {
		t.Run(tc.recipe, func(t *testing.T) {
			transport, err := os.ReadFile(filepath.Join(recipesDir, tc.recipe+"-transport.conf"))
			if err != nil {
				t.Fatal(err)
			}
			e := recipeEnv(t, recipe(t, tc.recipe))
			dir := mtaTempDir(t, "outguard-exim-")
			host, port := e.outguardSMTP()
			addr := eximDaemon(t, bin, dir, string(transport), host, port)
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("client.example"); err != nil {
				t.Fatal(err)
			}
			if err := c.Auth(sasl.NewPlainClient("", "alice@customer.example", "secret")); err != nil {
				t.Fatalf("AUTH: %v\n%s", err, eximLog(dir)())
			}
			msg := strings.ReplaceAll(strings.Replace(forgedX, "X-AuthUser", tc.header, 1), "\n", "\r\n")
			if err := c.SendMail("shop@customer.example", []string{"rcpt@example.org"}, strings.NewReader(msg)); err != nil {
				t.Fatalf("submission: %v\n%s", err, eximLog(dir)())
			}
			e.waitRecord(1, eximLog(dir))
			if r := e.lastRecord(); r.Identity != "alice@customer.example" || r.IdentitySource != "header "+tc.header {
				t.Errorf("identity %q from %q (reason %q), want the login alice@customer.example from header %s", r.Identity, r.IdentitySource, r.IdentityReason, tc.header)
			}
			if d := e.nh.Received()[0].Data; bytes.Contains(d, []byte(tc.header)) {
				t.Errorf("relayed message still carries %s:\n%s", tc.header, d)
			}
		})
	}
}
