package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const oidcSection = `
admin:
  oidc:
    issuer: https://sso.example.com/realms/staff
    client_id: outguard
    client_secret_file: oidc.secret
    redirect_url: https://console.example.net:8025/login/oidc/callback
    grants:
      - {group: abuse-desk, scope: all}
      - {email: reseller@example.org, scope: out.example.net}
      - {subject: "248289761001", scope: all}
`

func TestAdminOIDC(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oidc.secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(p, []byte(sectionBase+oidcSection), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Admin.OIDC
	if o == nil {
		t.Fatal("admin.oidc not read")
	}
	if o.Name != "sso.example.com" || o.GroupsClaim != "groups" || !slices.Equal(o.Scopes, []string{"openid", "email", "profile"}) {
		t.Errorf("defaults: got name %q, groups_claim %q, scopes %v", o.Name, o.GroupsClaim, o.Scopes)
	}
	if s, err := o.Secret(); err != nil || s != "s3cret" {
		t.Errorf("Secret() = %q, %v; want the file's secret", s, err)
	}
	if len(o.Grants) != 3 || o.Grants[1].Email != "reseller@example.org" || o.Grants[1].Scope != "out.example.net" {
		t.Errorf("grants: %+v", o.Grants)
	}
	c, err = Parse([]byte(sectionBase))
	if err != nil || c.Admin.OIDC != nil {
		t.Fatalf("without admin.oidc: got %+v, %v; want none", c.Admin.OIDC, err)
	}
}

// TestAdminOIDCBad: each mistake is reported with its line and key.
func TestAdminOIDCBad(t *testing.T) {
	with := func(old, new string) string { return sectionBase + strings.Replace(oidcSection, old, new, 1) }
	for _, tc := range []struct {
		name, yaml string
		line       int
		path, want string
	}{
		{"http issuer", with("https://sso.example.com/realms/staff", "http://sso.example.com"), 18, "admin.oidc.issuer", "http is allowed for a loopback host only"},
		{"no client id", with("client_id: outguard", "client_id: \"\""), 19, "admin.oidc.client_id", "client_id is empty"},
		{"two secrets", with("client_secret_file: oidc.secret", "client_secret_file: oidc.secret\n    client_secret: x"), 21, "admin.oidc.client_secret", "both set"},
		{"callback path", with("8025/login/oidc/callback", "8025/oidc"), 21, "admin.oidc.redirect_url", "the path must be /login/oidc/callback"},
		{"no openid", with("    grants:", "    scopes: [email]\n    grants:"), 22, "admin.oidc.scopes", "lacks openid"},
		{"no grants", sectionBase + strings.Split(oidcSection, "    grants:")[0], 17, "admin.oidc.grants", "nobody could sign in"},
		{"grant of two kinds", with("{group: abuse-desk, scope: all}", "{group: abuse-desk, email: a@example.org, scope: all}"), 23, "admin.oidc.grants[0]", "name exactly one"},
		{"grant without scope", with("{group: abuse-desk, scope: all}", "{group: abuse-desk}"), 23, "admin.oidc.grants[0]", "scope is empty"},
		{"grant of unknown domain", with("scope: out.example.net", "scope: nowhere.example"), 24, "admin.oidc.grants[1].scope", `scope "nowhere.example" is neither`},
		{"unknown key", with("client_id: outguard", "client_id: outguard\n    client_key: x"), 20, "admin.oidc.client_key", `unknown key "client_key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			var found bool
			for _, p := range ProblemsOf(err) {
				if strings.Contains(p.String(), tc.want) {
					found = true
					if p.Line != tc.line || p.Path != tc.path {
						t.Errorf("got line %d, key %s; want line %d, key %s (%s)", p.Line, p.Path, tc.line, tc.path, p)
					}
				}
			}
			if !found {
				t.Errorf("got %v, want a problem saying %q", err, tc.want)
			}
		})
	}
}
