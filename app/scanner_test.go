package app

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
)

// requireService skips (or, with OUTGUARD_REQUIRE_EXTERNAL set, fails)
// when nothing answers on addr.
func requireService(t *testing.T, name, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
		t.Fatalf("%s not answering on %s and OUTGUARD_REQUIRE_EXTERNAL is set (run .ci/scanners.sh)", name, addr)
	}
	t.Skipf("%s not answering on %s; run .ci/scanners.sh, or set OUTGUARD_REQUIRE_EXTERNAL to make this fail", name, addr)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func zipped(name string, data []byte) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.Create(name)
	w.Write(data)
	z.Close()
	return b.Bytes()
}

func attachment(ident, name string, data []byte) string {
	return "X-AuthUser: " + ident + "\r\nSubject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream; name=" + name +
		"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=" + name + "\r\n\r\n" + base64.StdEncoding.EncodeToString(data) + "\r\n--b1--\r\n"
}

func TestScannersOverSMTP(t *testing.T) {
	clamd := strings.TrimPrefix(envOr("OUTGUARD_CLAMD_ADDR", "tcp:127.0.0.1:3310"), "tcp:")
	rspamd := strings.TrimPrefix(envOr("OUTGUARD_RSPAMD_URL", "http://127.0.0.1:11333"), "http://")
	requireService(t, "clamd", clamd)
	requireService(t, "rspamd", rspamd)
	// The built-in engine is off: verdicts come from the real scanners.
	e := newEnv(t, "", `filter:
  engines:
    builtin: {enabled: false}
    rspamd: {enabled: true, url: "http://`+rspamd+`", timeout: 30s, on_error: tempfail}
    clamd: {enabled: true, address: "tcp:`+clamd+`", timeout: 30s, on_error: tempfail}
`)
	cases := []struct {
		name, msg string
		code      int
		word      string
	}{
		{"GTUBE via rspamd", testMessage("r1", "gtube", gtube), 550, "[OG-SPAM]"},
		{"EICAR via clamd", attachment("v1", "eicar.com", []byte(eicar)), 550, "[OG-VIRUS]"},
		{"EICAR in a zip via clamd", attachment("v2", "files.zip", zipped("eicar.com", []byte(eicar))), 550, "[OG-VIRUS]"},
		{"clean relayed", testMessage("r2", "Lunch on Thursday", "Hi Anna, shall we meet at noon at the usual place? Best, Tom"), 250, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.send("a@out.example.net", tc.msg)
			if tc.code == 250 {
				if err != nil {
					t.Fatalf("clean message: %v", err)
				}
				return
			}
			r := replyOf(err)
			if r == nil || r.Code != tc.code || !strings.Contains(r.Message, tc.word) {
				t.Fatalf("got %v, want %d %s", err, tc.code, tc.word)
			}
		})
	}
}

func TestDeadScannerTempfailOrAccept(t *testing.T) {
	dead := testutil.DeadAddr(t)
	for _, tc := range []struct {
		onError string
		want    int
	}{{"tempfail", 451}, {"accept", 250}} {
		t.Run(tc.onError, func(t *testing.T) {
			e := newEnv(t, "", `filter:
  engines:
    rspamd: {enabled: true, url: "http://`+dead+`", timeout: 2s, on_error: `+tc.onError+`}
    clamd: {enabled: true, address: "tcp:`+dead+`", timeout: 2s, on_error: `+tc.onError+`}
`)
			err := e.send("a@out.example.net", testMessage("d1", "hello", "a normal message"))
			if tc.want == 250 {
				if err != nil {
					t.Fatalf("on_error accept: %v, want relayed", err)
				}
				if n := len(e.mail()); n != 1 {
					t.Errorf("relayed %d, want 1", n)
				}
				return
			}
			r := replyOf(err)
			if r == nil || r.Code != 451 || r.EnhancedCode != (smtp.EnhancedCode{4, 7, 1}) {
				t.Fatalf("on_error tempfail: %v, want 451 4.7.1", err)
			}
			if n := len(e.mail()); n != 0 {
				t.Errorf("relayed %d, want 0", n)
			}
		})
	}
}
