package console

import (
	"net/http"
	"strings"
	"testing"

	"github.com/outguard/outguard/admin/internal/admintest"
	"github.com/outguard/outguard/admin/ops"
)

func oidcTestSetup(t *testing.T, c *Console, grants ...OIDCGrant) *oidcSetup {
	t.Helper()
	if err := c.SetOIDC(&OIDCOptions{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://console.example/login/oidc/callback", Grants: grants}); err != nil {
		t.Fatal(err)
	}
	return c.oidc.Load()
}

// TestOIDCAdmit maps people through the grants: a grant of scope all
// wins, grants of one domain give it, grants of two domains and no grant
// refuse, an email grant needs the verified address.
func TestOIDCAdmit(t *testing.T) {
	e := newConsoleEnv(t)
	set := oidcTestSetup(t, e.console,
		OIDCGrant{Group: "desk", Scope: ops.ScopeAll},
		OIDCGrant{Group: "resellers", Scope: domOut},
		OIDCGrant{Email: "Res@Example.org", Scope: domOut},
		OIDCGrant{Group: "other", Scope: domOther},
		OIDCGrant{Subject: "s-7", Scope: domOther},
	)
	for _, tc := range []struct {
		name       string
		who        oidcPerson
		wantName   string
		wantDomain string
		wantErr    string
	}{
		{"group of all", oidcPerson{subject: "s-1", email: "ana@example.org", groups: []string{"x", "desk"}}, "ana@example.org", "", ""},
		{"all wins over a domain", oidcPerson{subject: "s-2", email: "b@example.org", groups: []string{"resellers", "desk"}}, "b@example.org", "", ""},
		{"domain by group", oidcPerson{subject: "s-3", groups: []string{"resellers"}}, "oidc:s-3", domOut, ""},
		{"domain by email, any case", oidcPerson{subject: "s-4", email: "res@example.org"}, "res@example.org", domOut, ""},
		{"two grants of one domain", oidcPerson{subject: "s-5", email: "res@example.org", groups: []string{"resellers"}}, "res@example.org", domOut, ""},
		{"by subject", oidcPerson{subject: "s-7"}, "oidc:s-7", domOther, ""},
		{"two domains", oidcPerson{subject: "s-6", groups: []string{"resellers", "other"}}, "", "", "several domains"},
		{"no grant", oidcPerson{subject: "s-8", email: "m@example.org", groups: []string{"staff"}}, "", "", "through no grant"},
		{"unverified email is not matched", oidcPerson{subject: "s-9"}, "", "", "as oidc:s-9, but"},
		{"no subject", oidcPerson{groups: []string{"desk"}}, "", "", "names nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.console.admit(set, tc.who)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want a refusal with %q", p, err, tc.wantErr)
				}
				return
			}
			if err != nil || p.Name != tc.wantName || !strings.EqualFold(p.Domain, tc.wantDomain) {
				t.Fatalf("got %+v, %v; want %s of %q", p, err, tc.wantName, tc.wantDomain)
			}
		})
	}
}

// A principal name that is a token's is refused, not mixed up with it.
func TestOIDCNameOfToken(t *testing.T) {
	e := newConsoleEnv(t)
	set := oidcTestSetup(t, e.console, OIDCGrant{Subject: "s", Scope: ops.ScopeAll})
	_, err := e.console.admit(set, oidcPerson{subject: "s", email: admintest.Root.Name})
	if err == nil || !strings.Contains(err.Error(), "also an API token's name") {
		t.Fatalf("got %v, want a refusal of the token's name", err)
	}
}

// TestOIDCSeal: a sealed pending sign-in reads back; a changed byte, a
// value sealed under another key, or junk does not.
func TestOIDCSeal(t *testing.T) {
	e := newConsoleEnv(t)
	p := oidcPending{State: "st", Nonce: "no", Verifier: "ve", Next: "/log", Expires: 42, Setup: "fp"}
	v := e.console.seal(p)
	if got, ok := e.console.unseal(v); !ok || got != p {
		t.Fatalf("unseal(seal(p)) = %+v, %v", got, ok)
	}
	b := []byte(v)
	b[3] ^= 1
	other, err := New(Options{Ops: e.Ops})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{string(b), other.seal(p), "", ".", "x.y", strings.Repeat("a", 5000)} {
		if got, ok := e.console.unseal(bad); ok {
			t.Errorf("unseal(%.40q) = %+v, want a refusal", bad, got)
		}
	}
}

// FuzzOIDCUnseal: the pending cookie comes from the browser; no value
// panics, and none but a sealed one is accepted.
func FuzzOIDCUnseal(f *testing.F) {
	c, err := New(Options{Ops: admintest.New(f, nil).Ops})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.seal(oidcPending{State: "s"}))
	f.Add("eyJzIjoicyJ9.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		p, ok := c.unseal(v)
		if ok && c.seal(p) != v {
			t.Fatalf("accepted %q, which is not what seal makes of %+v", v, p)
		}
	})
}

// TestOIDCOff: without OIDC the sign-in page has no button and the flow's
// paths answer 404.
func TestOIDCOff(t *testing.T) {
	e := newConsoleEnv(t)
	for _, path := range []string{"/login/oidc", "/login/oidc/callback?code=x&state=y"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: got %d, want 404", path, resp.StatusCode)
		}
	}
}
