package console

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outguard/outguard/admin/ops"
)

// loginPage shows the sign-in form with a fresh anti-forgery value, kept
// in a cookie and in the form (double submit): there is no session yet
// to hold it.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := c.session(r); ok {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// Keep the value of an earlier sign-in page, so that a second tab or
	// a stray request through /login does not void the first form.
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == 43 {
		c.renderLogin(w, r, status, msg, ck.Value)
		return
	}
	v, err := randomToken(c.rand)
	if err != nil {
		c.log.Error("admin console: sign-in form", "err", err)
		http.Error(w, "internal error; see outguard's log", http.StatusInternalServerError)
		return
	}
	setCookie(w, r, loginCookie, v, 3600)
	c.renderLogin(w, r, status, msg, v)
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg, form string) {
	next := localPath(r.FormValue("next"), "/")
	c.render(w, r, nil, status, "login", map[string]any{"Title": "Sign in", "Form": form, "Next": next, "Error": msg, "Name": clip(r.PostFormValue("name")),
		"OIDC": c.oidcButton(next)})
}

func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		c.refuse(w, r, http.StatusForbidden, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		c.refuse(w, r, http.StatusBadRequest, "unreadable form")
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !tokenEqual(r.PostForm.Get("form"), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this console. Try again.")
		return
	}
	client := ops.ClientIP(r.RemoteAddr)
	var (
		p    ops.Principal
		cred credential
	)
	if secret := r.PostForm.Get("token"); secret != "" {
		var tok ops.Token
		p, tok, err = c.ops.SignIn(r.Context(), secret, client)
		cred = tokenCredential(tok)
	} else {
		var a ops.Account
		p, a, err = c.ops.SignInAccount(r.Context(), r.PostForm.Get("name"), r.PostForm.Get("password"), r.PostForm.Get("code"), client)
		cred = accountCredential(a)
	}
	if err != nil {
		var te *ops.ThrottledError
		switch {
		case errors.As(err, &te):
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(te.RetryAfter.Seconds()))))
			c.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins: try again in %s.", te.RetryAfter.Round(time.Second)))
		case errors.Is(err, ops.ErrUnauthorized):
			c.showLogin(w, r, http.StatusUnauthorized, "The name, password, code or token is not valid.")
		default:
			c.log.Error("admin console: sign-in", "err", err)
			c.showLogin(w, r, http.StatusUnauthorized, "The name, password, code or token is not valid.")
		}
		return
	}
	if !c.beginSession(w, r, p, cred) {
		return
	}
	method := "token"
	if cred.account {
		method = "account"
	}
	c.log.Info("admin console: signed in", "actor", p.Name, "method", method, "account", cred.account, "remote", r.RemoteAddr)
	http.Redirect(w, r, localPath(r.PostForm.Get("next"), "/"), http.StatusSeeOther)
}

// beginSession ends the browser's old session, if any, and starts one for
// p signed in with cred. It answers 500 itself and returns false when the
// session cannot be made.
func (c *Console) beginSession(w http.ResponseWriter, r *http.Request, p ops.Principal, cred credential) bool {
	if old, err := r.Cookie(sessionCookie); err == nil {
		if err := c.sessions.remove(r.Context(), old.Value); err != nil {
			c.log.Error("admin console: ending the earlier session", "err", err)
		}
	}
	s, err := c.newSession(r.Context(), p, cred)
	if err != nil {
		c.log.Error("admin console: sign-in", "err", err)
		http.Error(w, "internal error; see outguard's log", http.StatusInternalServerError)
		return false
	}
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, s.id, 0)
	return true
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.sessions.remove(r.Context(), s.id); err != nil {
		return err
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// scopeLabel describes a session's scope for the header.
func (s *session) scopeLabel() string {
	if s.p.All() {
		return "all domains"
	}
	return strings.ToLower(s.p.Domain)
}
