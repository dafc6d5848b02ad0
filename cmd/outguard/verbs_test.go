package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outguard/outguard/internal/passwd"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func TestCheckConfig(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"example is valid", []string{"check-config", "../../testdata/outguard.example.yaml"}, 0, "configuration is valid"},
		{"bad key names its line", []string{"check-config", "../../config/testdata/bad-core-unknown-key.yaml"}, 1, `line 4: unknown key "alow_insecure_auth"`},
		{"json", []string{"check-config", "--json", "../../config/testdata/bad-core-network.yaml"}, 1, `"ok":false`},
		{"missing file", []string{"check-config", "/nonexistent.yaml"}, 1, "no such file"},
		{"no argument", []string{"check-config"}, 2, "exactly one FILE"},
		{"bad flag", []string{"check-config", "--bogus", "x"}, 2, "bogus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, output %q; want exit %d containing %q", code, out+errOut, tc.wantCode, tc.want)
			}
		})
	}
}

func TestARFParseVerb(t *testing.T) {
	out, _, code := runCLI(t, "arf", "parse", "--json", "../../arf/testdata/arf-base64.eml", "../../arf/testdata/refuse-dsn.eml")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one file refused)", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want one JSON object per file:\n%s", len(lines), out)
	}
	var ok, refused map[string]any
	json.Unmarshal([]byte(lines[0]), &ok)
	json.Unmarshal([]byte(lines[1]), &refused)
	for _, k := range []string{"file", "ok", "error", "warnings", "profile", "feedback_type", "version", "user_agent", "original_mail_from", "original_rcpt_to", "arrival_date", "source_ip", "source_port", "reported_domain", "reported_uri", "incidents", "message_id", "identity"} {
		if _, present := ok[k]; !present {
			t.Errorf("key %q missing", k)
		}
	}
	if ok["ok"] != true || refused["ok"] != false || refused["error"] != "not-arf" {
		t.Errorf("ok=%v, refused ok=%v error=%v; want true, false, not-arf", ok["ok"], refused["ok"], refused["error"])
	}
	if _, _, code := runCLI(t, "arf", "parse"); code != 2 {
		t.Errorf("arf parse without files: exit %d, want 2", code)
	}
}

func TestClassifyVerb(t *testing.T) {
	dir := t.TempDir()
	spam := filepath.Join(dir, "spam.eml")
	os.WriteFile(spam, []byte("Subject: x\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*"+"GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"), 0o600)
	out, _, code := runCLI(t, "classify", "--json", spam, "../../testdata/ham/"+firstHam(t), filepath.Join(dir, "missing.eml"))
	if code != 1 {
		t.Errorf("exit %d, want 1 (one file missing)", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	var r [3]map[string]any
	for i := range lines {
		json.Unmarshal([]byte(lines[i]), &r[i])
	}
	if r[0]["class"] != "spam" || r[1]["class"] != "clean" || r[2]["error"] == "" {
		t.Errorf("classes %v %v, error %v", r[0]["class"], r[1]["class"], r[2]["error"])
	}
}

func firstHam(t *testing.T) string {
	files, _ := filepath.Glob("../../testdata/ham/*.eml")
	if len(files) == 0 {
		t.Fatal("no ham corpus")
	}
	return filepath.Base(files[0])
}

func TestHashPasswordFromStdin(t *testing.T) {
	r, w, _ := os.Pipe()
	w.WriteString("s3cret-pass\n")
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	out, _, code := runCLI(t, "hash-password", "--bcrypt")
	h := strings.TrimSpace(out)
	if code != 0 || passwd.Verify(h, "s3cret-pass") != nil {
		t.Errorf("exit %d, hash %q does not verify", code, h)
	}
	if _, _, code := runCLI(t, "hash-password", "positional"); code != 2 {
		t.Errorf("password as an argument: exit %d, want 2", code)
	}
}

func TestHelpAndUnknownVerb(t *testing.T) {
	for _, v := range []string{"serve", "check-config", "hash-password", "version", "classify", "arf", "logs", "lock"} {
		out, _, code := runCLI(t, v, "--help")
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d, output %q", v, code, out)
		}
	}
	if _, _, code := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown verb: exit %d, want 2", code)
	}
}
