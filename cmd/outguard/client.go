package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outguard/outguard/admin/apiv1"
	"github.com/outguard/outguard/config"
)

// DefaultServer is the admin API the client verbs talk to when neither
// --server, --config nor OUTGUARD_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:8025"

// maxAnswerBytes bounds a JSON answer read from the daemon.
const maxAnswerBytes = 64 << 20

// clientHelp is the part of every client verb's help about reaching the
// daemon.
const clientHelp = `
The verb talks to a running daemon's admin API (it never opens the
database). The daemon is found from --server URL, else --config FILE (its
admin.address), else $OUTGUARD_SERVER, else ` + DefaultServer + `. The
bearer token comes from --token, else $OUTGUARD_TOKEN; without one the verb
exits with status 2. A token scoped to one administrative domain sees and
acts on that domain only.

Exit status: 0 success, 1 a refused or failed request, 2 bad usage.
`

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	name     string
	server   string
	token    string
	config   string
	json     bool
	timeout  time.Duration
	insecure bool
}

func addClientFlags(fs *flag.FlagSet, name string) *clientFlags {
	c := &clientFlags{name: name}
	fs.StringVar(&c.server, "server", "", "admin API `URL` (default $OUTGUARD_SERVER or "+DefaultServer+")")
	fs.StringVar(&c.token, "token", "", "bearer `TOKEN` (default $OUTGUARD_TOKEN)")
	fs.StringVar(&c.config, "config", "", "read the admin address from this configuration `FILE`")
	fs.BoolVar(&c.json, "json", false, "JSON output: one object per line for lists, one document for single results")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up on the request after this `DURATION`")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the admin listener's TLS certificate")
	return c
}

// apiClient calls the admin API.
type apiClient struct {
	verb   string
	base   *url.URL
	token  string
	http   *http.Client
	stderr io.Writer
}

// usageError prints a usage problem and returns exitUsage.
func usageError(stderr io.Writer, verb, format string, args ...any) int {
	fmt.Fprintf(stderr, "outguard %s: %s\n", verb, fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "Run 'outguard %s --help' for usage.\n", strings.Fields(verb)[0])
	return exitUsage
}

// client resolves the server and token; on failure it returns the exit
// code to use.
func (c *clientFlags) client(stderr io.Writer) (*apiClient, int) {
	if c.server != "" && c.config != "" {
		return nil, usageError(stderr, c.name, "give --server or --config, not both")
	}
	server := c.server
	if c.config != "" {
		cfg, err := config.Load(c.config)
		if err != nil {
			fmt.Fprintf(stderr, "outguard %s: %v\n", c.name, err)
			return nil, exitFailed
		}
		server = serverFromConfig(cfg)
	}
	if server == "" {
		server = os.Getenv("OUTGUARD_SERVER")
	}
	if server == "" {
		server = DefaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError(stderr, c.name, "server %q is not an http:// or https:// URL", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	token := c.token
	if token == "" {
		token = os.Getenv("OUTGUARD_TOKEN")
	}
	if token == "" {
		return nil, usageError(stderr, c.name, "no admin token: pass --token TOKEN or set OUTGUARD_TOKEN")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return &apiClient{verb: c.name, base: u, token: token, stderr: stderr,
		http: &http.Client{Timeout: c.timeout, Transport: tr}}, -1
}

// serverFromConfig is the URL of cfg's admin listener, reached over
// loopback when it listens on every address.
func serverFromConfig(cfg *config.Config) string {
	host, port, err := net.SplitHostPort(cfg.Admin.Address)
	if err != nil {
		return ""
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if cfg.Admin.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// apiError is an error answer of the API.
type apiError struct {
	status  int
	code    string
	message string
	body    []byte
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.message, e.status, e.code)
}

// request sends a request; path is below /api/v1 and already escaped.
// A non-2xx answer becomes an *apiError; the caller closes the body.
func (c *apiClient) request(method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	target := c.base.String() + "/api/v1" + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "outguard-cli/"+Version)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.base.Redacted(), unwrapURLError(err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb apiv1.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		return nil, &apiError{status: resp.StatusCode, code: eb.Error.Code, message: eb.Error.Message, body: b}
	}
	return nil, &apiError{status: resp.StatusCode, code: http.StatusText(resp.StatusCode), message: "unexpected answer: " + clean(strings.TrimSpace(string(b)), 200)}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends a request with an optional JSON body and decodes the JSON
// answer into out.
func (c *apiClient) call(method, path string, query url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = strings.NewReader(string(b)), "application/json"
	}
	return c.send(method, path, query, body, ct, out)
}

// send sends body of contentType (a message, an overlay) and decodes the
// JSON answer into out.
func (c *apiClient) send(method, path string, query url.Values, body io.Reader, contentType string, out any) error {
	resp, err := c.request(method, path, query, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(out); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}

// readArg reads the file named by a FILE argument, standard input for
// "-".
func readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 1<<30))
	}
	return os.ReadFile(name)
}

// fail prints a failed request and returns its exit status: exitUsage
// when the daemon refused a parameter (HTTP 400 bad_parameter: a usage
// error it caught, such as a missing --domain or a bad --status), else
// exitFailed.
func (c *apiClient) fail(err error) int {
	fmt.Fprintf(c.stderr, "outguard %s: %v\n", c.verb, err)
	var ae *apiError
	if errors.As(err, &ae) && ae.code == "bad_parameter" {
		return exitUsage
	}
	return exitFailed
}

// table returns a tabwriter for aligned columns.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes one tab-separated table row of cleaned cells.
func row(tw io.Writer, cells ...string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(tw, "\t")
		}
		io.WriteString(tw, clean(c, 80))
	}
	io.WriteString(tw, "\n")
}

// clean makes s safe for a terminal (control characters, which could
// carry escape sequences from a message's subject, become spaces; tabs
// would break the table) and cuts it to max runes.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

// orDash shows an empty value as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtTime formats t for tables (UTC), "-" for zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// checkDuration validates a duration flag locally, so a typo is a usage
// error (2) rather than a refused request (1).
func checkDuration(stderr io.Writer, verb, flagName, v string) (int, bool) {
	if v == "" {
		return 0, true
	}
	d, err := config.ParseDuration(v)
	if err != nil || d <= 0 {
		return usageError(stderr, verb, "--%s %q: use a duration like 90m, 12h, 7d or 2w", flagName, v), false
	}
	return 0, true
}

// checkTime validates a time flag locally.
func checkTime(stderr io.Writer, verb, flagName, v string) (int, bool) {
	if v == "" {
		return 0, true
	}
	if _, err := apiv1.ParseTime(v); err != nil {
		return usageError(stderr, verb, "--%s: %v", flagName, err), false
	}
	return 0, true
}
