package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigIsValid(t *testing.T) {
	c, err := Load(filepath.Join("..", "testdata", "outguard.example.yaml"))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if got := c.Listeners[0].Address; got != "127.0.0.1:2525" {
		t.Errorf("listener address = %q, want 127.0.0.1:2525 (the README's trial)", got)
	}
	if c.Admin.Address != "127.0.0.1:8025" || c.NextHop.Type != "capture" {
		t.Errorf("admin %q next hop %q, want the trial setup", c.Admin.Address, c.NextHop.Type)
	}
	if u, d := c.FindUser("trial"); u == nil || d.Name != "out.example.net" {
		t.Errorf("user trial in out.example.net not found")
	}
	if !filepath.IsAbs(c.DataDir) {
		t.Errorf("data_dir %q not made absolute", c.DataDir)
	}
}

// TestPackagedConfig checks the configuration the Debian package installs
// as /etc/outguard/outguard.yaml: its only problem is that users and
// tokens are not set yet, and once they are, it is valid.
func TestPackagedConfig(t *testing.T) {
	path := filepath.Join("..", "packaging", "outguard.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "set users and tokens") {
		t.Fatalf("packaged config: got %v, want the \"set users and tokens\" error", err)
	}
	if n := strings.Count(err.Error(), "\n"); n > 0 {
		t.Errorf("packaged config has more problems than missing users and tokens:\n%v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set := strings.Replace(string(raw), "domains: []", `domains:
  - name: out.example.net
    users:
      - name: mta1
        password_hash: "$2a$10$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"`, 1)
	set = strings.Replace(set, "tokens: []", `tokens:
    - name: ops
      hash: "$2a$10$dbXzmbHaCgJ1iu4IiLf.OOhLHH0DYHPPoSP8ZZmDe1wHO4S4iqn6q"
      scope: all`, 1)
	tmp := filepath.Join(t.TempDir(), "outguard.yaml")
	if err := os.WriteFile(tmp, []byte(set), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(tmp)
	if err != nil {
		t.Fatalf("packaged config with a user and a token: %v", err)
	}
	if c.DataDir != "/var/lib/outguard" || c.NextHop.Type != "smtp" {
		t.Errorf("data_dir %q next hop %q, want /var/lib/outguard and smtp", c.DataDir, c.NextHop.Type)
	}
}

func TestMinimalDefaults(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		got, want any
	}{
		{"tls", c.Listeners[0].TLS, "starttls"},
		{"max_message_bytes", c.Limits.MaxMessageBytes, int64(DefaultMaxMessageBytes)},
		{"idle_timeout", c.Limits.IdleTimeout.D(), DefaultIdleTimeout},
		{"next_hop.type", c.NextHop.Type, "smtp"},
		{"pool_size", c.NextHop.PoolSize, DefaultPoolSize},
		{"admin.address", c.Admin.Address, DefaultAdminAddress},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestBadCoreFixtures loads every testdata/bad-core-*.yaml and checks that
// the error names what is wrong.
func TestBadCoreFixtures(t *testing.T) {
	want := map[string]string{
		"bad-core-unknown-key.yaml":          `line 4: listeners[0].alow_insecure_auth: unknown key "alow_insecure_auth"`,
		"bad-core-unknown-top-key.yaml":      `unknown key "listners"`,
		"bad-core-no-listeners.yaml":         "listeners: none configured",
		"bad-core-listener-address.yaml":     `address "2525" is not host:port`,
		"bad-core-listener-tls.yaml":         `tls "always": use none, starttls or implicit`,
		"bad-core-cert-without-key.yaml":     "set both cert_file and key_file",
		"bad-core-next-hop-address.yaml":     "next_hop.address",
		"bad-core-next-hop-type.yaml":        `next_hop.type "lmtp"`,
		"bad-core-no-domains.yaml":           "set users and tokens before starting",
		"bad-core-user-no-credentials.yaml":  "set password_hash",
		"bad-core-plaintext-password.yaml":   "password_hash is not a bcrypt or argon2id hash",
		"bad-core-network.yaml":              `network "192.0.2.0/33" is not a CIDR prefix`,
		"bad-core-duplicate-user.yaml":       "user names are global",
		"bad-core-token-scope.yaml":          `scope "out.example.com" is neither "all" nor a configured domain`,
		"bad-core-duration.yaml":             `line 6: limits.idle_timeout: invalid duration "5 minutes"`,
		"bad-core-data-line-length.yaml":     "limits.max_data_line_length 500: must be 0 (no limit) or at least 998",
		"bad-core-log-level.yaml":            `log.level "verbose"`,
		"bad-core-two-documents.yaml":        "more than one YAML document",
		"bad-core-wrong-type.yaml":           "line 6",
		"bad-core-user-limit.yaml":           "max_recipients 500: use 0 (the global limit) or a number up to limits.max_recipients (50)",
		"bad-core-listener-connections.yaml": "listeners[1] (fbl): max_connections_per_ip 40 exceeds max_connections 20",
		"bad-core-ipv6-prefix.yaml":          "limits.ipv6_prefix_length 129: use 1 to 128",
		"bad-core-refused-recipients.yaml":   "limits.max_refused_recipients -1: must be at least 1",
		"bad-core-auth-memory.yaml":          "limits.auth_memory_bytes 65536: use at least 1048576",
		"bad-core-idle-before-mail.yaml":     "listeners[0] (smtp): idle_timeout_before_mail 100ms: use at least 1s",
		"bad-core-unscannable.yaml":          `unscannable "reject": use accept`,
	}
	cases := make([]badCase, 0, len(want))
	for file, w := range want {
		cases = append(cases, badCase{file, []string{w}})
	}
	slices.SortFunc(cases, func(a, b badCase) int { return strings.Compare(a.file, b.file) })
	checkBadFixtures(t, "bad-core-", "", cases)
}

func TestDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"10m", 10 * time.Minute, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"0", 0, true},
		{"-1m", 0, false},
		{"ten", 0, false},
		{"5 minutes", 0, false},
		{"-3d", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, make([]byte, MaxFileSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want a size error", err)
	}
}

// FuzzParse feeds arbitrary documents to the loader: it must return a
// config or an error, never panic or hang.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/minimal.yaml", "../testdata/outguard.example.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	files, _ := filepath.Glob("testdata/bad-*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	if b, err := os.ReadFile("testdata/several-problems.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("limits: &l {max_recipients: x}\nidentity: {thresholds: *l}\nlisteners: [1, [2], {a: b}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && c != nil {
			t.Fatal("config returned with an error")
		}
		if err == nil {
			return
		}
		// Every problem says what is wrong, one a line, in the
		// order of the file.
		ps := ProblemsOf(err)
		if len(ps) == 0 || !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %q carries no problems", err)
		}
		last := 0
		for _, p := range ps {
			if p.Message == "" || strings.Contains(p.String(), "\n") {
				t.Fatalf("bad problem %+v", p)
			}
			if p.Line > 0 && p.Line < last {
				t.Fatalf("problems out of line order: %v", err)
			}
			if p.Line > 0 {
				last = p.Line
			}
		}
	})
}

// TestExampleConfigHasEveryKey checks that every key of the schema appears
// in the shipped example configuration (set or commented out), so that the
// example stays the complete reference it claims to be.
func TestExampleConfigHasEveryKey(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "outguard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")
			if tag[0] == "-" || !f.IsExported() {
				continue
			}
			if tag[0] == "" {
				walk(f.Type, path) // inline
				continue
			}
			if !regexp.MustCompile(`(?m)^[\s#-]*(- )?`+regexp.QuoteMeta(tag[0])+`:`).MatchString(text) &&
				!strings.Contains(text, "{"+tag[0]+":") && !strings.Contains(text, " "+tag[0]+":") {
				t.Errorf("key %s%s is not in testdata/outguard.example.yaml", path, tag[0])
			}
			walk(f.Type, path+tag[0]+".")
		}
	}
	walk(reflect.TypeOf(Config{}), "")
}

func TestListenerConnectionDefaults(t *testing.T) {
	c, err := Parse([]byte(`
listeners:
  - {name: submission, address: "127.0.0.1:2525", allow_insecure_auth: true}
  - {name: fbl, address: "127.0.0.1:2526", tls: none, feedback: true}
  - {name: fbl-big, address: "127.0.0.1:2527", tls: none, feedback: true, max_connections: 3, idle_timeout_before_mail: 20s}
limits: {max_connections: 400, max_connections_per_ip: 40, idle_timeout_before_mail: 45s}
next_hop: {type: capture}
domains:
  - name: out.example.net
    users: [{name: alice, networks: ["127.0.0.1/32"]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		max, perIP int
		idle       time.Duration
	}{
		{400, 40, 45 * time.Second},
		{DefaultFeedbackMaxConnections, DefaultFeedbackMaxConnectionsPerIP, 45 * time.Second},
		{3, 3, 20 * time.Second},
	} {
		l := c.Listeners[i]
		if l.MaxConnections != want.max || l.MaxConnectionsPerIP != want.perIP || l.IdleTimeoutBeforeMail.D() != want.idle {
			t.Errorf("listener %s: got max_connections %d, per IP %d, idle before MAIL %s; want %d, %d, %s",
				l.Name, l.MaxConnections, l.MaxConnectionsPerIP, l.IdleTimeoutBeforeMail.D(), want.max, want.perIP, want.idle)
		}
	}
	if c.Limits.IPv6PrefixLength != 64 || c.Limits.MaxRefusedRecipients != DefaultMaxRefusedRecipients || c.Limits.AuthMemoryBytes != DefaultAuthMemoryBytes {
		t.Errorf("limits defaults: ipv6_prefix_length %d, max_refused_recipients %d, auth_memory_bytes %d",
			c.Limits.IPv6PrefixLength, c.Limits.MaxRefusedRecipients, c.Limits.AuthMemoryBytes)
	}
}
