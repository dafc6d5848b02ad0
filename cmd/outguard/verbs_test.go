package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
		{"bad key names its line", []string{"check-config", "../../config/testdata/bad-core-unknown-key.yaml"}, 1, `bad-core-unknown-key.yaml: line 4: listeners[0].alow_insecure_auth: unknown key "alow_insecure_auth"`},
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

// TestCheckConfigEveryProblem checks that check-config reports every
// problem of a file in one run (a type error, an unknown key, validation
// failures), one JSON object each with line, path, message and fix, and
// that serve refuses the file with the same list.
func TestCheckConfigEveryProblem(t *testing.T) {
	const file = "../../config/testdata/several-problems.yaml"
	out, _, code := runCLI(t, "check-config", "--json", file)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var res struct {
		File   string `json:"file"`
		OK     bool   `json:"ok"`
		Errors []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	want := []struct {
		line float64
		path string
	}{
		{5, "listeners[0].tls"},
		{8, "limits.max_recipients"},
		{9, "limits.max_mesage_bytes"},
		{16, "domains[0].users[0].networks"},
		{19, "identity.thresholds.spam"},
		{20, "identity.thresholds.window"},
	}
	if res.OK || res.File != file || len(res.Errors) != len(want) {
		t.Fatalf("got %s; want ok false and %d errors", out, len(want))
	}
	for i, w := range want {
		e := res.Errors[i]
		keys := slices.Sorted(maps.Keys(e))
		if !slices.Equal(keys, []string{"fix", "line", "message", "path"}) {
			t.Errorf("error %d has keys %v, want fix, line, message, path", i, keys)
		}
		if e["line"] != w.line || e["path"] != w.path || e["message"] == "" || e["fix"] == "" {
			t.Errorf("error %d = %v, want line %v, path %s, a message and a fix", i, e, w.line, w.path)
		}
	}

	_, text, code := runCLI(t, "check-config", file)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if code != 1 || len(lines) != len(want) {
		t.Fatalf("exit %d, %d lines, want 1 and one line per problem:\n%s", code, len(lines), text)
	}
	if want := file + `: line 19: identity.thresholds.spam: "five" is not a whole number`; !strings.HasPrefix(lines[4], want) {
		t.Errorf("line %q, want it to start with %q", lines[4], want)
	}

	_, serveOut, code := runCLI(t, "serve", "--config", file)
	if code != 1 || !strings.Contains(serveOut, text) {
		t.Errorf("serve: exit %d, output %q; want 1 and the list of check-config", code, serveOut)
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

// TestARFParseOccurrence: --identity-occurrence picks the occurrence of a
// repeated identity header, as the identity rules do.
func TestARFParseOccurrence(t *testing.T) {
	const file = "../../arf/testdata/arf-identity-ambiguous.eml" // alice above bob
	for occ, want := range map[string]string{"first": "alice@customer.example", "last": "bob@customer.example", "only": ""} {
		out, _, code := runCLI(t, "arf", "parse", "--json", "--identity-occurrence", occ, file)
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res["identity"] != want {
			t.Errorf("--identity-occurrence %s: exit %d, identity %v; want %q", occ, code, res["identity"], want)
		}
	}
	if _, errOut, code := runCLI(t, "arf", "parse", "--identity-occurrence", "top", file); code != 2 || !strings.Contains(errOut, "first, last or only") {
		t.Errorf("--identity-occurrence top: exit %d %q, want 2 naming the choices", code, errOut)
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

func TestClassifyExplain(t *testing.T) {
	ham := "../../testdata/ham/" + firstHam(t)
	out, errs, code := runCLI(t, "classify", "--explain", "--top", "3", ham)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^.+: clean \(score -?\d+\.\d, band clean\)$`).MatchString(lines[0]) {
		t.Errorf("first line %q: want class, score and band", lines[0])
	}
	if !regexpLine(out, `^  content model seed-[0-9a-f]+(\+\d+)?: score -?\d+\.\d\d$`) {
		t.Errorf("no content model line with version and score:\n%s", out)
	}
	for _, side := range []struct {
		head, sign string
	}{{"  toward spam:", "+"}, {"  toward ham:", "-"}} {
		i := slices.Index(lines, side.head)
		if i < 0 {
			t.Errorf("no %q section:\n%s", side.head, out)
			continue
		}
		n := 0
		for _, l := range lines[i+1:] {
			if !strings.HasPrefix(l, "    ") {
				break
			}
			if !strings.HasPrefix(l, "    "+side.sign) {
				t.Errorf("%s line %q has the wrong sign", side.head, l)
			}
			n++
		}
		if n < 1 || n > 3 {
			t.Errorf("%s: %d tokens, want 1 to 3 (--top 3)", side.head, n)
		}
	}

	out, _, code = runCLI(t, "classify", "--explain", "--json", ham, "/nonexistent.eml")
	jl := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitFailed || len(jl) != 2 {
		t.Fatalf("--explain --json: exit %d, %d lines; want 1 and one line per file:\n%s", code, len(jl), out)
	}
	var r struct {
		File, Class, Band, Error, ModelVersion string
		Score                                  *float64
		Reasons                                []string
		Tokens                                 []struct {
			Name  string
			Value float64
		}
	}
	var keys map[string]any
	json.Unmarshal([]byte(jl[0]), &keys)
	for _, k := range []string{"file", "class", "score", "reasons", "band", "error", "tokens"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("key %q missing from %s", k, jl[0])
		}
	}
	if err := json.Unmarshal([]byte(jl[0]), &r); err != nil || r.Class != "clean" || r.Band != "clean" || len(r.Tokens) == 0 || len(r.Tokens) > 20 {
		t.Fatalf("got %s (%v)", jl[0], err)
	}
	for i, tok := range r.Tokens {
		if tok.Name == "" || tok.Value == 0 || (i > 0 && tok.Value > r.Tokens[i-1].Value) {
			t.Errorf("token %d %+v: want named, non-zero and sorted by value", i, tok)
		}
	}
	if !strings.Contains(jl[1], `"tokens":[]`) || !strings.Contains(jl[1], `"error":"open /nonexistent.eml`) {
		t.Errorf("failed file: got %s", jl[1])
	}
	out, _, _ = runCLI(t, "classify", "--json", ham)
	if strings.Contains(out, `"tokens"`) {
		t.Errorf("tokens without --explain: %s", out)
	}

	cfg := filepath.Join(t.TempDir(), "off.yaml")
	os.WriteFile(cfg, []byte(builtinOnly+"filter: {engines: {builtin: {content_model: {enabled: false}}}}\n"), 0o600)
	out, errs, code = runCLI(t, "classify", "--config", cfg, "--explain", ham)
	if code != exitOK || !strings.Contains(out, "  content model: off\n") {
		t.Errorf("content model off: exit %d, stderr %q\n%s", code, errs, out)
	}

	for _, args := range [][]string{
		{"classify", "--top", "3", ham},
		{"classify", "--explain", "--top", "0", ham},
		{"classify", "--explain", "--top", "many", ham},
		{"classify", "--explain"},
	} {
		if _, errs, code := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d (%q), want 2", args, code, errs)
		}
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
	for _, v := range []string{"serve", "check-config", "hash-password", "version", "classify", "arf", "logs", "lock", "learn", "model"} {
		out, _, code := runCLI(t, v, "--help")
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d, output %q", v, code, out)
		}
	}
	if _, _, code := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown verb: exit %d, want 2", code)
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "version", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("version --json: exit %d, output %q", code, out)
	}
	if v["version"] == "" || v["commit"] == "" || !strings.HasPrefix(v["go"], "go") {
		t.Errorf("version --json = %v, want version, commit and go", v)
	}
}

// TestManpage checks that the man page holds every verb's --help and is
// valid roff: no text line that roff would take for a request, and, where
// groff is installed, no warning from it.
func TestManpage(t *testing.T) {
	out, _, code := runCLI(t, "manpage", "--date", "2026-01-02")
	if code != 0 || !strings.HasPrefix(out, `.TH OUTGUARD 8 "2026-01-02"`) {
		t.Fatalf("manpage: exit %d, starts %q", code, out[:min(len(out), 60)])
	}
	for name := range verbs {
		if !strings.Contains(out, "\n.SS outguard "+name+"\n") {
			t.Errorf("no section for verb %s", name)
		}
	}
	macros := regexp.MustCompile(`^\.(TH|SH|SS|nf|fi|TP|I|B|BR)( |$)`)
	for i, line := range strings.Split(out, "\n") {
		if (strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'")) && !macros.MatchString(line) {
			t.Errorf("line %d is a stray roff request: %q", i+1, line)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: roff warnings not checked")
		return
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("groff: %v\n%s", err, msg)
	}
}

// TestClassifySummary checks the summary line that ends work on many
// files (standard error is not a terminal here, so there is no bar).
func TestClassifySummary(t *testing.T) {
	_, errOut, code := runCLI(t, "classify", "../../testdata/ham/01-business-reply.eml", "../../testdata/ham/02-newsletter-tracking.eml", "/nonexistent.eml")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one file unreadable)", code)
	}
	if !regexp.MustCompile(`outguard classify: 3 files in [0-9.]+m?s: 2 clean, 1 errors\n$`).MatchString(errOut) {
		t.Errorf("stderr %q, want the summary line", errOut)
	}
	_, errOut, _ = runCLI(t, "classify", "../../testdata/ham/01-business-reply.eml")
	if errOut != "" {
		t.Errorf("one file: stderr %q, want nothing", errOut)
	}
}
