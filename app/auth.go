package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/passwd"
	"github.com/outguard/outguard/smtpd"
)

// users is the outgoing-user table built from the configuration; the
// authenticator swaps it atomically on reload.
type users struct {
	byName   map[string]userEntry
	networks []networkEntry
	// decoy is checked instead of a hash for unknown user names (and
	// users without a password), so that they take as long to refuse as
	// a wrong password; decoyKind is its passwd.Kind.
	decoy, decoyKind string
}

type userEntry struct {
	user *smtpd.User
	hash string
}

type networkEntry struct {
	prefix netip.Prefix
	user   *smtpd.User
}

// buildUsers makes the user table of c. The decoy is a hash of a random
// secret with the algorithm and cost that most users' hashes have,
// reused from prev when that did not change.
func buildUsers(c *config.Config, prev *users) (*users, error) {
	u := &users{byName: map[string]userEntry{}}
	kinds := map[string]int{}
	sample := map[string]string{}
	for _, d := range c.Domains {
		for _, cu := range d.Users {
			su := &smtpd.User{Name: cu.Name, Domain: d.Name}
			u.byName[cu.Name] = userEntry{user: su, hash: cu.PasswordHash}
			for _, p := range cu.Prefixes() {
				u.networks = append(u.networks, networkEntry{prefix: p, user: su})
			}
			if k := passwd.Kind(cu.PasswordHash); k != "" {
				kinds[k]++
				sample[k] = cu.PasswordHash
			}
		}
	}
	best := ""
	for k, n := range kinds {
		if best == "" || n > kinds[best] || n == kinds[best] && moreCostly(sample[k], k, sample[best], best) {
			best = k
		}
	}
	if best == "" {
		// No user has a password: any refusal is as fast as any other.
		return u, nil
	}
	if prev != nil && prev.decoyKind == best {
		u.decoy, u.decoyKind = prev.decoy, prev.decoyKind
		return u, nil
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	decoy, err := passwd.HashLike(sample[best], hex.EncodeToString(secret))
	if err != nil {
		return nil, fmt.Errorf("decoy password hash: %w", err)
	}
	u.decoy, u.decoyKind = decoy, best
	return u, nil
}

// moreCostly breaks a tie between two kinds of hash used by as many
// users: the one taking more memory, else the greater kind name, so that
// the choice does not depend on map order.
func moreCostly(hashA, kindA, hashB, kindB string) bool {
	ma, mb := passwd.MemoryCost(hashA), passwd.MemoryCost(hashB)
	if ma != mb {
		return ma > mb
	}
	return kindA > kindB
}

// authenticator implements smtpd.Authenticator over the configured users.
type authenticator struct {
	table    atomic.Pointer[users]
	verifier *passwd.Verifier
}

var _ smtpd.Authenticator = (*authenticator)(nil)

func (a *authenticator) Authenticate(ctx context.Context, username, password string) (*smtpd.User, error) {
	t := a.table.Load()
	e, ok := t.byName[username]
	if !ok || e.hash == "" {
		// Spend the same effort as a real check so that timing does not
		// tell which user names exist.
		if t.decoy != "" {
			if err := a.verifier.VerifyContext(ctx, t.decoy, password); errors.Is(err, passwd.ErrBusy) {
				return nil, fmt.Errorf("unknown user %q: %w", username, smtpd.ErrAuthBusy)
			}
		}
		return nil, fmt.Errorf("unknown user %q: %w", username, smtpd.ErrAuthFailed)
	}
	if err := a.verifier.VerifyContext(ctx, e.hash, password); err != nil {
		if errors.Is(err, passwd.ErrBusy) {
			return nil, fmt.Errorf("user %q: %w", username, smtpd.ErrAuthBusy)
		}
		return nil, fmt.Errorf("user %q: %v: %w", username, err, smtpd.ErrAuthFailed)
	}
	return e.user, nil
}

// UserForAddress returns the user with the most specific network covering
// ip.
func (a *authenticator) UserForAddress(ip netip.Addr) (*smtpd.User, bool) {
	var best *smtpd.User
	bits := -1
	for _, n := range a.table.Load().networks {
		if n.prefix.Contains(ip) && n.prefix.Bits() > bits {
			best, bits = n.user, n.prefix.Bits()
		}
	}
	return best, best != nil
}
