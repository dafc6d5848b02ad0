package config

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
)

// OIDC is the console's optional OpenID Connect sign-in
// (docs/config-admin.md#openid-connect): the sign-in page offers "Sign in
// with Name", and a person the provider vouches for gets a console session
// when one of Grants admits them. Absent: no such sign-in.
type OIDC struct {
	// Name is shown on the sign-in button; default the issuer's host name.
	Name string `yaml:"name"`
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document (Issuer + "/.well-known/openid-configuration") and its ID
	// tokens name it. https, or http on a loopback address.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client id at the provider; the ID token's
	// audience must contain it.
	ClientID string `yaml:"client_id"`
	// ClientSecret (or the file ClientSecretFile) is the client's secret;
	// neither: a public client (PKCE alone).
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is the console's callback as the browser reaches it:
	// scheme, host and port of the console, path /login/oidc/callback.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes asked for; default openid, email, profile. openid is
	// required.
	Scopes []string `yaml:"scopes"`
	// GroupsClaim is the ID token's claim listing the person's groups;
	// default "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// Grants admit people: nobody else signs in.
	Grants []OIDCGrant `yaml:"grants"`
}

// OIDCGrant admits the people it matches with a scope. It names exactly
// one of Group (a value of the groups claim), Email (a verified address)
// and Subject (the provider's sub).
type OIDCGrant struct {
	Group   string `yaml:"group"`
	Email   string `yaml:"email"`
	Subject string `yaml:"subject"`
	// Scope is "all" or one administrative domain; required.
	Scope string `yaml:"scope"`
}

// OIDCCallbackPath is the path of the console's OpenID Connect callback,
// the path redirect_url must have.
const OIDCCallbackPath = "/login/oidc/callback"

// DefaultOIDCScopes is the default of admin.oidc.scopes.
var DefaultOIDCScopes = []string{"openid", "email", "profile"}

// DefaultOIDCGroupsClaim is the default of admin.oidc.groups_claim.
const DefaultOIDCGroupsClaim = "groups"

func (o *OIDC) setDefaults() {
	if o == nil {
		return
	}
	if len(o.Scopes) == 0 {
		o.Scopes = slices.Clone(DefaultOIDCScopes)
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultOIDCGroupsClaim
	}
	if o.Name == "" {
		if u, err := url.Parse(o.Issuer); err == nil && u.Hostname() != "" {
			o.Name = u.Hostname()
		}
	}
}

// validate checks admin.oidc; bad records each problem.
func (o *OIDC) validate(domains map[string]bool, bad func(string, ...any)) {
	if o == nil {
		return
	}
	if err := checkOIDCURL(o.Issuer); err != nil {
		bad("admin.oidc.issuer %q: %v: the provider's issuer URL, as its discovery document names it", o.Issuer, err)
	}
	if o.ClientID == "" {
		bad("admin.oidc.client_id is empty: set the console's client id at the provider")
	}
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		bad("admin.oidc.client_secret and client_secret_file are both set: keep one")
	}
	if err := checkOIDCURL(o.RedirectURL); err != nil {
		bad("admin.oidc.redirect_url %q: %v: the console's address as browsers reach it, with the path %s", o.RedirectURL, err, OIDCCallbackPath)
	} else if u, _ := url.Parse(o.RedirectURL); u.Path != OIDCCallbackPath || u.RawQuery != "" || u.Fragment != "" {
		bad("admin.oidc.redirect_url %q: the path must be %s, without query: the console's callback", o.RedirectURL, OIDCCallbackPath)
	}
	if !slices.Contains(o.Scopes, "openid") {
		bad("admin.oidc.scopes %v lacks openid: add openid (the provider sends an ID token only then)", o.Scopes)
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			bad("admin.oidc.scopes: %q is not a scope: one word each", s)
		}
	}
	if strings.TrimSpace(o.GroupsClaim) != o.GroupsClaim || len(o.GroupsClaim) > 128 {
		bad("admin.oidc.groups_claim %q: a claim name without spaces, at most 128 characters", o.GroupsClaim)
	}
	if len(o.Grants) == 0 {
		bad("admin.oidc.grants is empty: nobody could sign in; add a grant (group, email or subject, with a scope)")
	}
	for i, g := range o.Grants {
		where := fmt.Sprintf("admin.oidc.grants[%d]", i)
		n := 0
		for _, v := range []string{g.Group, g.Email, g.Subject} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			bad("%s: sets %d of group, email and subject: name exactly one (who the grant admits)", where, n)
		}
		if g.Email != "" && !strings.Contains(g.Email, "@") {
			bad("%s: email %q is not an address: a verified email address, as the provider sends it", where, g.Email)
		}
		switch {
		case g.Scope == "":
			bad("%s: scope is empty: set all, or one administrative domain", where)
		case g.Scope != "all" && !domains[strings.ToLower(g.Scope)]:
			bad("%s: scope %q is neither \"all\" nor a configured domain", where, g.Scope)
		}
	}
}

// checkOIDCURL accepts an absolute https URL, or http to a loopback host
// (a provider or console on the same machine, as in tests).
func checkOIDCURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("http is allowed for a loopback host only; use https")
	}
	return fmt.Errorf("the scheme must be https")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

// Secret returns the client secret from client_secret or
// client_secret_file, "" for a public client. It reads the file each time
// it is called (at start and on every reload).
func (o *OIDC) Secret() (string, error) {
	if o.ClientSecretFile == "" {
		return o.ClientSecret, nil
	}
	f, err := os.Open(o.ClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("admin.oidc.client_secret_file: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("admin.oidc.client_secret_file: %v", err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("admin.oidc.client_secret_file %s is larger than 4096 bytes; is it the secret?", o.ClientSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("admin.oidc.client_secret_file %s is empty", o.ClientSecretFile)
	}
	return s, nil
}
