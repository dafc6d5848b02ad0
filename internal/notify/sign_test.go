package notify

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"testing"
	"time"
)

type mimeDecoder = mime.WordDecoder

func TestVerify(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"x","type":"lock"}`)
	headers := func(ts time.Time, sig string) http.Header {
		h := http.Header{}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderSignature, sig)
		return h
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"valid", headers(now, Sign(testSecret, now, body)), body, nil},
		{"valid within tolerance", headers(now.Add(-4*time.Minute), Sign(testSecret, now.Add(-4*time.Minute), body)), body, nil},
		{"tampered body", headers(now, Sign(testSecret, now, body)), []byte(`{"id":"y","type":"lock"}`), ErrSignature},
		{"wrong secret", headers(now, Sign([]byte("other"), now, body)), body, ErrSignature},
		{"replayed", headers(now.Add(-time.Hour), Sign(testSecret, now.Add(-time.Hour), body)), body, ErrTimestamp},
		{"from the future", headers(now.Add(time.Hour), Sign(testSecret, now.Add(time.Hour), body)), body, ErrTimestamp},
		{"timestamp swapped", headers(now.Add(time.Second), Sign(testSecret, now, body)), body, ErrSignature},
		{"no signature", headers(now, ""), body, ErrSignature},
		{"not hex", headers(now, "sha256=zz"), body, ErrSignature},
		{"no timestamp", http.Header{HeaderSignature: {Sign(testSecret, now, body)}}, body, ErrTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(testSecret, tc.h, tc.body, now, 0); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Add("1772366400", Sign(testSecret, now, []byte("{}")), []byte("{}"))
	f.Add("-1", "sha256=", []byte(""))
	f.Add("99999999999999999999", "sha256=00", []byte("x"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := Verify(testSecret, h, body, now, 0)
		if err == nil && sig != Sign(testSecret, now.Add(time.Duration(mustInt(ts)-now.Unix())*time.Second), body) {
			t.Errorf("accepted a signature Sign would not make: ts %q sig %q", ts, sig)
		}
	})
}

func mustInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func ExampleSign() {
	ts := time.Unix(1772366400, 0)
	body := []byte(`{"id":"4f1c","type":"auto-lock"}`)
	sig := Sign([]byte("shared-secret"), ts, body)

	h := http.Header{}
	h.Set(HeaderTimestamp, "1772366400")
	h.Set(HeaderSignature, sig)
	fmt.Println(Verify([]byte("shared-secret"), h, body, ts.Add(time.Minute), 0))
	fmt.Println(Verify([]byte("shared-secret"), h, []byte(`{"id":"4f1c","type":"unlock"}`), ts, 0))
	// Output:
	// <nil>
	// notify: bad signature
}
