package filter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRspamdRequest(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"score":1.5,"action":"no action","symbols":{"A":{"score":1.5},"B":{"score":0}}}`)
	}))
	defer srv.Close()
	r, err := NewRspamd(RspamdOptions{URL: srv.URL + "/", Password: "s3cret", SettingsID: "outbound"})
	if err != nil {
		t.Fatal(err)
	}
	raw := buildMessage(stdHeaders, textPart("hello"))
	m := mustParse(t, raw)
	m.Envelope = Envelope{
		MailFrom: "alice@example.com", Rcpts: []string{"b@example.org", "c@example.net"},
		ClientIP: netip.MustParseAddr("192.0.2.10"), Helo: "web1.example.com", User: "alice", TransactionID: "01ABC",
	}
	v, err := r.Scan(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/checkv2" {
		t.Errorf("got %s %s, want POST /checkv2", got.Method, got.URL.Path)
	}
	for k, want := range map[string]string{
		"IP": "192.0.2.10", "Helo": "web1.example.com", "From": "alice@example.com", "User": "alice",
		"Queue-Id": "01ABC", "Settings-Id": "outbound", "Password": "s3cret",
	} {
		if g := got.Header.Get(k); g != want {
			t.Errorf("header %s: got %q, want %q", k, g, want)
		}
	}
	if g := got.Header.Values("Rcpt"); !slices.Equal(g, []string{"b@example.org", "c@example.net"}) {
		t.Errorf("got Rcpt headers %q, want one per recipient", g)
	}
	if string(body) != string(raw) {
		t.Errorf("got body of %d bytes, want the raw message of %d", len(body), len(raw))
	}
	if v.Class != Clean || v.Score != 1.5 || !slices.Equal(v.Reasons, []string{"rspamd:A(1.5)", "rspamd:B(0)"}) {
		t.Errorf("got %v %v %q, want clean 1.5 with both symbols", v.Class, v.Score, v.Reasons)
	}
}

func TestRspamdVerdict(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    RspamdOptions
		answer  string
		want    Class
		wantErr bool
	}{
		{"no action", RspamdOptions{}, `{"score":2,"action":"no action","symbols":{}}`, Clean, false},
		{"reject is spam", RspamdOptions{}, `{"score":16,"action":"reject","symbols":{"X":{"score":16}}}`, Spam, false},
		{"add header is clean by default", RspamdOptions{}, `{"score":7,"action":"add header","symbols":{}}`, Clean, false},
		{"add header configured as spam", RspamdOptions{SpamActions: []string{"reject", "add header"}}, `{"score":7,"action":"add header","symbols":{}}`, Spam, false},
		{"rewrite subject over the spam score", RspamdOptions{SpamScore: 6}, `{"score":6.5,"action":"rewrite subject","symbols":{}}`, Spam, false},
		{"under the spam score", RspamdOptions{SpamScore: 6}, `{"score":5.9,"action":"add header","symbols":{}}`, Clean, false},
		{"heuristic PHISHING alone is not phishing by default", RspamdOptions{}, `{"score":4,"action":"no action","symbols":{"PHISHING":{"score":4}}}`, Clean, false},
		{"PHISHING configured", RspamdOptions{PhishingSymbols: []string{"PHISHING"}}, `{"score":4,"action":"no action","symbols":{"PHISHING":{"score":4}}}`, Phishing, false},
		{"phishing feed", RspamdOptions{}, `{"score":16,"action":"reject","symbols":{"PHISHED_OPENPHISH":{"score":7}}}`, Phishing, false},
		{"whitelisted exclusion", RspamdOptions{}, `{"score":0,"action":"no action","symbols":{"PHISHED_WHITELISTED":{"score":0}}}`, Clean, false},
		{"wildcard pattern", RspamdOptions{PhishingSymbols: []string{"MY_PHISH_*"}}, `{"score":1,"action":"no action","symbols":{"MY_PHISH_X":{"score":1}}}`, Phishing, false},
		{"virus symbol", RspamdOptions{}, `{"score":20,"action":"reject","symbols":{"CLAM_VIRUS":{"score":20},"PHISHING":{"score":1}}}`, Virus, false},
		{"virus fail is not a virus", RspamdOptions{}, `{"score":0,"action":"no action","symbols":{"CLAM_VIRUS_FAIL":{"score":0}}}`, Clean, false},
		{"custom virus list", RspamdOptions{VirusSymbols: []string{"MY_AV"}}, `{"score":0,"action":"no action","symbols":{"MY_AV":{"score":0}}}`, Virus, false},
		{"skipped GTUBE", RspamdOptions{}, `{"is_skipped":true,"score":15,"action":"reject","symbols":{"GTUBE":{"score":0}}}`, Spam, false},
		{"not JSON", RspamdOptions{}, `<html>`, Clean, true},
		{"no action field", RspamdOptions{}, `{"error":"bad"}`, Clean, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.URL = "http://127.0.0.1:1"
			r, err := NewRspamd(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.verdict([]byte(tc.answer))
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnavailable) {
				t.Errorf("got %v, want it to wrap ErrUnavailable", err)
			}
			if v.Class != tc.want {
				t.Errorf("got %v, want %v", v.Class, tc.want)
			}
		})
	}
}

func TestRspamdHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	r, _ := NewRspamd(RspamdOptions{URL: srv.URL})
	_, err := r.Scan(context.Background(), cleanMessage(t))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "503") {
		t.Errorf("got %v, want ErrUnavailable naming the 503", err)
	}
}

func TestNewRspamdErrors(t *testing.T) {
	for _, o := range []RspamdOptions{{URL: "127.0.0.1:11333"}, {URL: "http://x", VirusSymbols: []string{"[bad"}}} {
		if _, err := NewRspamd(o); err == nil {
			t.Errorf("NewRspamd(%+v): got no error", o)
		}
	}
}

// rspamdMessage returns a message with the envelope rspamd needs for
// deterministic results.
func rspamdMessage(t testing.TB, raw []byte) *Message {
	m := mustParse(t, raw)
	m.Envelope = Envelope{MailFrom: "alice@example.com", Rcpts: []string{"bob@example.org"}, ClientIP: netip.MustParseAddr("127.0.0.1"), Helo: "localhost", User: "alice", TransactionID: "TEST1"}
	return m
}

func TestRspamdIntegration(t *testing.T) {
	r := realRspamd(t, RspamdOptions{})
	c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), EngineSpec{Engine: r, Timeout: 20 * time.Second})
	for _, tc := range []struct {
		name string
		raw  []byte
		want Class
	}{
		{"GTUBE is refused as spam", buildMessage(stdHeaders, textPart("Test message\r\n"+string(gtube))), Spam},
		{"ordinary mail is clean", buildMessage(stdHeaders, textPart("Hi Bob,\r\n\r\nthe meeting moved to Thursday 3pm, room 2.\r\n\r\nAlice")), Clean},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.Classify(context.Background(), rspamdMessage(t, tc.raw))
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			if v.Class != tc.want {
				t.Errorf("got %v (score %v, reasons %q), want %v", v.Class, v.Score, v.Reasons, tc.want)
			}
			if tc.want == Spam && !slices.Contains(v.Reasons, "rspamd:GTUBE(0)") {
				t.Errorf("got reasons %q, want rspamd:GTUBE(0)", v.Reasons)
			}
		})
	}
}

func TestRspamdDead(t *testing.T) {
	dead, err := NewRspamd(RspamdOptions{URL: "http://" + closedAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := NewRspamd(RspamdOptions{URL: "http://" + silentServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		engine    *Rspamd
		onError   OnError
		wantErr   []error
		wantClass Class
	}{
		{"refused, tempfail", dead, OnErrorTempfail, []error{ErrTempfail, ErrUnavailable}, Clean},
		{"refused, accept", dead, OnErrorAccept, nil, Clean},
		{"never answers, tempfail", silent, OnErrorTempfail, []error{ErrTempfail, ErrTimeout}, Clean},
		{"never answers, accept", silent, OnErrorAccept, nil, Clean},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), EngineSpec{Engine: tc.engine, Timeout: 300 * time.Millisecond, OnError: tc.onError})
			v, err := c.Classify(context.Background(), rspamdMessage(t, buildMessage(stdHeaders, textPart("hi"))))
			for _, w := range tc.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want it to wrap %v", err, w)
				}
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("got %v, want no error", err)
			}
			if v.Class != tc.wantClass {
				t.Errorf("got %v, want %v", v.Class, tc.wantClass)
			}
			if tc.onError == OnErrorAccept && !slices.Contains(v.Reasons, "rspamd:UNAVAILABLE(0)") {
				t.Errorf("got reasons %q, want rspamd:UNAVAILABLE(0)", v.Reasons)
			}
		})
	}
}
