package arf

import (
	"context"
	"errors"
	"fmt"
)

// TxRef names the transaction a complaint is about.
type TxRef struct {
	TxID     string
	Domain   string
	User     string
	Identity string
}

// Lookup finds transactions in the message log. Implementations return
// found=false, not an error, when nothing matches.
type Lookup interface {
	// ByTraceToken finds the transaction that got this trace header value
	// (as found in the complaint, trimmed; normalise it before lookup).
	ByTraceToken(ctx context.Context, token string) (TxRef, bool, error)
	// ByMessageID finds the transaction whose Message-ID is id (given
	// without angle brackets).
	ByMessageID(ctx context.Context, id string) (TxRef, bool, error)
}

// IdentityLookup is an optional extra of a Lookup: it finds the outgoing
// user and administrative domain that an identity last sent through, so an
// attribution by identity header alone can name them.
type IdentityLookup interface {
	ByIdentity(ctx context.Context, identity string) (TxRef, bool, error)
}

// Method says how a complaint was attributed.
type Method string

// Attribution methods, in the order Attribute tries them.
const (
	MethodTraceToken     Method = "trace-token"
	MethodMessageID      Method = "message-id"
	MethodIdentityHeader Method = "identity-header"
	MethodNone           Method = "none"
)

// Attribution is the outcome of Attribute.
type Attribution struct {
	// Method is how the transaction was found, MethodNone when it was not.
	Method Method
	// Tx is the transaction. With MethodIdentityHeader, only Identity is
	// known, plus Domain and User when the Lookup is an IdentityLookup that
	// found them; TxID is then "".
	Tx TxRef
}

// Attributed reports whether the complaint names a user or an identity.
func (a Attribution) Attributed() bool { return a.Method != MethodNone }

// Attribute finds who a complaint is about, in this order:
//
//  1. the trace token (outguard's trace header in the original's top-level
//     header), looked up with ByTraceToken;
//  2. the original's Message-ID, looked up with ByMessageID;
//  3. the identity header of the original's top-level header. The header
//     names only the end user: the transaction, outgoing user and
//     administrative domain are unknown, unless lk also implements
//     IdentityLookup and finds them. The header is taken from the
//     complained-about copy, which the recipient's provider got from
//     outguard, so it is trustworthy only where outguard does not strip it;
//     callers should weigh it accordingly.
//
// A nil lk looks nothing up. A lookup error stops the search and is returned (wrapped); a token or id
// that is not found moves on to the next method.
func Attribute(ctx context.Context, fb *Feedback, lk Lookup) (Attribution, error) {
	if fb == nil {
		return Attribution{Method: MethodNone}, errors.New("arf: nil feedback")
	}
	if lk == nil {
		lk = noLookup{}
	}
	if fb.TraceToken != "" {
		ref, ok, err := lk.ByTraceToken(ctx, fb.TraceToken)
		if err != nil {
			return Attribution{Method: MethodNone}, fmt.Errorf("arf: trace token lookup: %w", err)
		}
		if ok {
			return Attribution{Method: MethodTraceToken, Tx: ref}, nil
		}
	}
	if fb.MessageID != "" {
		ref, ok, err := lk.ByMessageID(ctx, fb.MessageID)
		if err != nil {
			return Attribution{Method: MethodNone}, fmt.Errorf("arf: message id lookup: %w", err)
		}
		if ok {
			return Attribution{Method: MethodMessageID, Tx: ref}, nil
		}
	}
	if fb.Identity != "" {
		ref := TxRef{Identity: fb.Identity}
		if il, ok := lk.(IdentityLookup); ok {
			r, found, err := il.ByIdentity(ctx, fb.Identity)
			if err != nil {
				return Attribution{Method: MethodNone}, fmt.Errorf("arf: identity lookup: %w", err)
			}
			if found {
				ref.Domain, ref.User = r.Domain, r.User
			}
		}
		return Attribution{Method: MethodIdentityHeader, Tx: ref}, nil
	}
	return Attribution{Method: MethodNone}, nil
}

// noLookup finds nothing; Attribute uses it for a nil Lookup.
type noLookup struct{}

func (noLookup) ByTraceToken(context.Context, string) (TxRef, bool, error) {
	return TxRef{}, false, nil
}
func (noLookup) ByMessageID(context.Context, string) (TxRef, bool, error) { return TxRef{}, false, nil }
