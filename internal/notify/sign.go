package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook request headers.
const (
	HeaderEvent     = "X-Outguard-Event"
	HeaderDelivery  = "X-Outguard-Delivery"
	HeaderTimestamp = "X-Outguard-Timestamp"
	HeaderSignature = "X-Outguard-Signature"
)

// DefaultTolerance is how far from the receiver's clock Verify accepts a
// timestamp.
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	// ErrSignature: the signature header is missing, malformed or does
	// not match the body.
	ErrSignature = errors.New("notify: bad signature")
	// ErrTimestamp: the timestamp header is missing, malformed or too far
	// from now (a replay).
	ErrTimestamp = errors.New("notify: bad timestamp")
)

// Sign returns the signature header value of body sent at ts:
// "sha256=" and the hex HMAC-SHA256 under secret of "TS.BODY", TS being
// the decimal Unix time in seconds.
func Sign(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request's timestamp and signature headers
// against its body, as a receiver should: the timestamp must lie within
// tolerance (DefaultTolerance if 0) of now, and the signature must be
// Sign's for that timestamp.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tsText := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || len(tsText) > 12 {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, tsText)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is more than %s from now", ErrTimestamp, ts.UTC().Format(time.RFC3339), tolerance)
	}
	got, ok := strings.CutPrefix(h.Get(HeaderSignature), "sha256=")
	if !ok {
		return fmt.Errorf("%w: want \"sha256=HEX\"", ErrSignature)
	}
	gotMAC, err := hex.DecodeString(got)
	if err != nil {
		return fmt.Errorf("%w: not hexadecimal", ErrSignature)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, ts, body), "sha256="))
	if !hmac.Equal(gotMAC, want) {
		return ErrSignature
	}
	return nil
}
