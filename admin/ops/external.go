package ops

// SignInExternal runs check, a sign-in vouched for by an outside identity
// provider (the console's OpenID Connect sign-in,
// docs/config-admin.md#openid-connect), under the sign-in throttle of the
// client's address: a locked-out client gets a *ThrottledError without
// check running, and a check that fails with ErrUnauthorized (a forged or
// replayed answer, a person no grant admits) counts against the client as
// a wrong password does.
func (o *Ops) SignInExternal(client string, check func() (Principal, error)) (Principal, error) {
	keys := throttleKeys(client, "")
	if err := o.throttled(keys); err != nil {
		return Principal{}, err
	}
	p, err := check()
	o.afterSignIn(keys, err)
	return p, err
}
