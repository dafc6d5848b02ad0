package filter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
)

// RspamdName is the name of the rspamd engine in reasons and metrics.
const RspamdName = "rspamd"

// maxRspamdReply bounds the JSON answer read from rspamd.
const maxRspamdReply = 4 << 20

// Default symbol patterns of RspamdOptions.
var (
	// DefaultPhishingSymbols are the symbols of rspamd's phishing feeds.
	// The heuristic PHISHING symbol is left out on purpose: it fires when a
	// link's text shows one domain and its href goes to another, which is
	// what every newsletter with click tracking does (rspamd itself gives
	// it only 4 points). PHISHED_WHITELISTED is an exclusion, not a hit.
	DefaultPhishingSymbols = []string{"PHISHED_OPENPHISH", "PHISHED_PHISHTANK", "PHISHED_GENERIC_SERVICE", "HACKED_WP_PHISHING"}
	// DefaultVirusSymbols match the antivirus module's symbols
	// (CLAM_VIRUS, and the *_VIRUS of other scanners) but not their
	// *_VIRUS_FAIL symbols.
	DefaultVirusSymbols = []string{"CLAM_VIRUS", "*_VIRUS"}
)

// RspamdOptions configure the rspamd engine.
type RspamdOptions struct {
	// URL is the base URL of rspamd's normal worker (or proxy), e.g.
	// "http://127.0.0.1:11333". Required.
	URL string
	// Password, when set, is sent in the Password header.
	Password string
	// SettingsID, when set, is sent in the Settings-Id header to select a
	// settings profile in rspamd.
	SettingsID string
	// SpamActions are the rspamd actions that make a message spam. Nil
	// means ["reject"]. Other actions ("add header", "rewrite subject",
	// "greylist", "soft reject", "no action") are clean unless listed here
	// or the score reaches SpamScore.
	SpamActions []string
	// SpamScore, when positive, makes a message spam when rspamd's score
	// reaches it, whatever the action.
	SpamScore float64
	// PhishingSymbols are symbol patterns ('*' matches any run of
	// characters) that make a message phishing. Nil means
	// DefaultPhishingSymbols.
	PhishingSymbols []string
	// VirusSymbols are symbol patterns that make a message virus. Nil
	// means DefaultVirusSymbols.
	VirusSymbols []string
	// Client sends the requests; nil means a client of its own. Timeouts
	// come from the context Classify passes in.
	Client *http.Client
}

// Rspamd asks rspamd's /checkv2 endpoint. It is safe for concurrent use.
type Rspamd struct {
	opts   RspamdOptions
	base   string
	client *http.Client
}

var (
	_ Engine = (*Rspamd)(nil)
	_ Pinger = (*Rspamd)(nil)
)

// NewRspamd checks opts and returns the engine.
func NewRspamd(opts RspamdOptions) (*Rspamd, error) {
	base := strings.TrimRight(opts.URL, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("filter: rspamd url %q: use http://host:port", opts.URL)
	}
	for _, p := range append(slices.Clone(opts.PhishingSymbols), opts.VirusSymbols...) {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("filter: rspamd symbol pattern %q: %w", p, err)
		}
	}
	if opts.SpamActions == nil {
		opts.SpamActions = []string{"reject"}
	}
	if opts.PhishingSymbols == nil {
		opts.PhishingSymbols = DefaultPhishingSymbols
	}
	if opts.VirusSymbols == nil {
		opts.VirusSymbols = DefaultVirusSymbols
	}
	c := opts.Client
	if c == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		c = &http.Client{Transport: t}
	}
	return &Rspamd{opts: opts, base: base, client: c}, nil
}

// Name returns "rspamd".
func (r *Rspamd) Name() string { return RspamdName }

type rspamdReply struct {
	IsSkipped bool    `json:"is_skipped"`
	Score     float64 `json:"score"`
	Action    string  `json:"action"`
	Symbols   map[string]struct {
		Score float64 `json:"score"`
	} `json:"symbols"`
}

// Scan posts the raw message with the envelope in rspamd's request
// headers and maps the answer to a verdict.
func (r *Rspamd) Scan(ctx context.Context, m *Message) (Verdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/checkv2", m.Raw())
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.ContentLength = m.Size()
	h := req.Header
	if m.ClientIP.IsValid() {
		h.Set("IP", m.ClientIP.String())
	}
	setIf(h, "Helo", m.Helo)
	setIf(h, "From", m.MailFrom)
	for _, rc := range m.Rcpts {
		h.Add("Rcpt", rc)
	}
	setIf(h, "User", m.User)
	setIf(h, "Queue-Id", m.TransactionID)
	setIf(h, "Settings-Id", r.opts.SettingsID)
	setIf(h, "Password", r.opts.Password)
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Verdict{}, ctx.Err()
		}
		return Verdict{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRspamdReply))
	if err != nil {
		if ctx.Err() != nil {
			return Verdict{}, ctx.Err()
		}
		return Verdict{}, fmt.Errorf("%w: reading answer: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Verdict{}, fmt.Errorf("%w: rspamd answered %s: %.200s", ErrUnavailable, resp.Status, body)
	}
	return r.verdict(body)
}

func setIf(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// verdict maps a /checkv2 JSON answer to a Verdict.
func (r *Rspamd) verdict(body []byte) (Verdict, error) {
	var rep rspamdReply
	if err := json.Unmarshal(body, &rep); err != nil {
		return Verdict{}, fmt.Errorf("%w: rspamd answer is not JSON: %w", ErrUnavailable, err)
	}
	if rep.Action == "" {
		return Verdict{}, fmt.Errorf("%w: rspamd answer has no action: %.200s", ErrUnavailable, body)
	}
	v := Verdict{Score: rep.Score}
	names := make([]string, 0, len(rep.Symbols))
	for n := range rep.Symbols {
		names = append(names, n)
	}
	// Highest contributions first, so that truncated logs keep what
	// mattered.
	slices.SortFunc(names, func(a, b string) int {
		sa, sb := rep.Symbols[a].Score, rep.Symbols[b].Score
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		v.Reasons = append(v.Reasons, Reason(RspamdName, n, rep.Symbols[n].Score))
		switch {
		case matchAny(r.opts.VirusSymbols, n):
			v.Class = max(v.Class, Virus)
		case matchAny(r.opts.PhishingSymbols, n):
			v.Class = max(v.Class, Phishing)
		}
	}
	if slices.Contains(r.opts.SpamActions, rep.Action) || (r.opts.SpamScore > 0 && rep.Score >= r.opts.SpamScore) {
		v.Class = max(v.Class, Spam)
	}
	return v, nil
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Ping asks rspamd's /ping endpoint.
func (r *Rspamd) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(string(b)), "pong") {
		return fmt.Errorf("%w: rspamd /ping answered %s %q", ErrUnavailable, resp.Status, b)
	}
	return nil
}
