package config

import (
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
		t.Errorf("listener address = %q, want 127.0.0.1:2525 (SPEC §6)", got)
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
		"bad-core-unknown-key.yaml":         `line 4: unknown key "alow_insecure_auth"`,
		"bad-core-unknown-top-key.yaml":     `unknown key "listners"`,
		"bad-core-no-listeners.yaml":        "listeners: none configured",
		"bad-core-listener-address.yaml":    `address "2525" is not host:port`,
		"bad-core-listener-tls.yaml":        `tls "always": use none, starttls or implicit`,
		"bad-core-cert-without-key.yaml":    "set both cert_file and key_file",
		"bad-core-next-hop-address.yaml":    "next_hop.address",
		"bad-core-next-hop-type.yaml":       `next_hop.type "lmtp"`,
		"bad-core-no-domains.yaml":          "domains: none configured",
		"bad-core-user-no-credentials.yaml": "set password_hash",
		"bad-core-plaintext-password.yaml":  "password_hash is not a bcrypt or argon2id hash",
		"bad-core-network.yaml":             `network "192.0.2.0/33" is not a CIDR prefix`,
		"bad-core-duplicate-user.yaml":      "user names are global",
		"bad-core-token-scope.yaml":         `scope "out.example.com" is neither "all" nor a configured domain`,
		"bad-core-duration.yaml":            `line 6: invalid duration "5 minutes"`,
		"bad-core-log-level.yaml":           `log.level "verbose"`,
		"bad-core-two-documents.yaml":       "more than one YAML document",
		"bad-core-wrong-type.yaml":          "line 6",
		"bad-core-user-limit.yaml":          "max_recipients 500: use 0 (the global limit) or a number up to limits.max_recipients (50)",
		"bad-core-unscannable.yaml":         `unscannable "reject": use accept`,
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
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && c != nil {
			t.Fatal("config returned with an error")
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
