package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/filter/content"
	"github.com/outguard/outguard/internal/testutil"
)

// modelScore is the daemon's content-model score of a message.
func modelScore(t *testing.T, l *content.Learner, raw []byte) float64 {
	t.Helper()
	m, err := filter.ParseBytes(raw, filter.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	doc := filter.ContentDoc(m)
	var ex content.Extractor
	z, _ := l.Score(ex.Extract(&doc))
	return z
}

// TestComplaintTeachesOnlyFromTrustedLoops sends the same complaint from
// an allow-listed feedback loop and from elsewhere: both count, only the
// first teaches the model, and the overlay survives a restart.
func TestComplaintTeachesOnlyFromTrustedLoops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources string
		learn   bool
	}{
		{"allow-listed loop", "[127.0.0.1/32]", true},
		{"unknown source", "[192.0.2.0/24]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "", "")
			b, _ := os.ReadFile(e.path)
			y := strings.Replace(string(b), "allow_insecure_auth: true}", "allow_insecure_auth: true, feedback: true}", 1)
			y = strings.Replace(y, "  retry: {initial: 1s, max: 2s}\n", "  retry: {initial: 1s, max: 2s}\n  feedback_sources: "+tc.sources+"\n", 1)
			os.WriteFile(e.path, []byte(y), 0o600)
			e.restart()
			if err := e.send("a@out.example.net", testMessage("seller", "garden tools", "Our spring catalogue of garden tools and seeds is out.")); err != nil {
				t.Fatal(err)
			}
			e.flush()
			orig, _ := testutil.StripReceived(e.mail()[0].Data)
			before := modelScore(t, e.app.learner, orig)
			c, err := smtp.Dial(e.addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendMail("fbl@mailbox.example", []string{"fbl@outguard.test"}, strings.NewReader(complaint(orig))); err != nil {
				t.Fatal(err)
			}
			c.Close()
			after := modelScore(t, e.app.learner, orig)
			t.Logf("content score %.2f -> %.2f", before, after)
			if learnt := after > before; learnt != tc.learn {
				t.Fatalf("score %.2f -> %.2f: learnt %v, want %v", before, after, learnt, tc.learn)
			}
			e.restart()
			if again := modelScore(t, e.app.learner, orig); again != after {
				t.Errorf("after restart the score is %.2f, want %.2f: the overlay was not kept", again, after)
			}
		})
	}
}

// TestReleaseTeachesHam quarantines a legitimate message the seed model
// blocks, releases a handful like it through the API, and checks that the
// next one passes, while the scores of the test corpus move little.
func TestReleaseTeachesHam(t *testing.T) {
	e := newEnv(t, "", "")
	api := mountAPI(t, e)
	variants := learnVariants(t)
	var ids []string
	for i, v := range variants[:5] {
		err := e.send("billing@out.example.net", "X-AuthUser: billing\r\n"+string(v))
		if r := replyOf(err); r == nil || r.Code != 550 {
			t.Fatalf("variant %d: got %v, want the seed model to block it (550)", i, err)
		}
		ids = append(ids, idOf(t, err))
		e.clock.Advance(5 * 60e9) // keep the identity under its spam threshold
	}
	last := variants[len(variants)-1]
	before := modelScore(t, e.app.learner, last)
	others := corpusScores(t, e.app.learner)
	for _, id := range ids {
		var res struct {
			Learned *struct{ Before, After float64 } `json:"learned"`
		}
		api.post(t, "/api/v1/messages/"+id+"/release", `{"reason":"legitimate billing mail"}`, 200, &res)
		if res.Learned == nil {
			t.Fatalf("release of %s taught nothing", id)
		}
	}
	after := modelScore(t, e.app.learner, last)
	t.Logf("unseen variant: content score %.2f before the releases, %.2f after", before, after)
	if err := e.send("billing@out.example.net", "X-AuthUser: billing\r\n"+string(last)); err != nil {
		t.Fatalf("after 5 releases the unseen variant is still refused: %v", err)
	}
	// Other messages: none may move by more than the stated bound.
	const bound = 1.5
	for name, s := range others {
		if d := modelScore(t, e.app.learner, s.raw) - s.score; d > bound || d < -bound {
			t.Errorf("%s: score moved by %.2f, more than the bound %.1f", name, d, bound)
		}
	}
}

type scored struct {
	raw   []byte
	score float64
}

// corpusScores scores testdata's ham and spam with l.
func corpusScores(t *testing.T, l *content.Learner) map[string]scored {
	t.Helper()
	out := map[string]scored{}
	for _, dir := range []string{"ham", "spam", "modern/spam"} {
		entries, err := os.ReadDir("../testdata/" + dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range entries {
			raw, err := os.ReadFile("../testdata/" + dir + "/" + f.Name())
			if err != nil {
				t.Fatal(err)
			}
			out[dir+"/"+f.Name()] = scored{raw, modelScore(t, l, raw)}
		}
	}
	return out
}

// learnVariants are six legitimate messages of one kind that the seed
// model blocks: testdata/learn.
func learnVariants(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 1; i <= 6; i++ {
		raw, err := os.ReadFile(fmt.Sprintf("../testdata/learn/%d.eml", i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")))
	}
	return out
}

// apiClient calls a running daemon's admin API with the trial token.
type apiClient struct{ base string }

// mountAPI restarts e with an admin token of scope all and returns a
// client of its API.
func mountAPI(t *testing.T, e *env) apiClient {
	t.Helper()
	return apiClient{base: e.withAdminToken(t)}
}

func (c apiClient) post(t *testing.T, path, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer trial-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d, want %d: %s", path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, data)
		}
	}
}

// TestBandOf converts every filter band, and checks that the names agree
// on both sides of the boundary.
