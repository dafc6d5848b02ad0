package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// MinTraceKeyLength is the shortest trace key accepted by configuration.
const MinTraceKeyLength = 16

// traceTokenBytes is how much of the HMAC a token keeps: 120 bits, which
// encode to 24 base32 characters without padding.
const traceTokenBytes = 15

var traceEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// TraceToken returns the opaque value of the trace header for a
// transaction: HMAC-SHA256 of txID under key, truncated to 120 bits and
// base32-encoded in lower case (24 characters). Without the key the token
// reveals nothing about the transaction or the identity; with it, the
// message log maps a token back by indexing the token of each transaction.
func TraceToken(key []byte, txID string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(txID))
	sum := mac.Sum(nil)
	return traceEncoding.EncodeToString(sum[:traceTokenBytes])
}

// ParseTraceToken normalises a token quoted in a complaint (surrounding
// whitespace, upper case) and reports whether it has the shape of a trace
// token, so a caller can look it up in its index.
func ParseTraceToken(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != traceEncoding.EncodedLen(traceTokenBytes) {
		return "", false
	}
	if _, err := traceEncoding.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// VerifyTraceToken reports whether token is the trace token of txID under
// key, in constant time. Token is normalised as ParseTraceToken does.
func VerifyTraceToken(key []byte, txID, token string) bool {
	got, ok := ParseTraceToken(token)
	if !ok {
		return false
	}
	return hmac.Equal([]byte(TraceToken(key, txID)), []byte(got))
}
