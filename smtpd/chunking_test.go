package smtpd

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// bdat returns a BDAT command with its chunk.
func bdat(chunk string, last bool) string {
	if last {
		return fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk)
	}
	return fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk)
}

// send writes s as it is (a command with its chunk) and reads the reply.
func (r *rawConn) send(s string) string {
	r.t.Helper()
	r.w.WriteString(s)
	r.w.Flush()
	return r.readReply()
}

// sendExpect is send that fails the test unless the reply has code.
func (r *rawConn) sendExpect(s string, code int) string {
	r.t.Helper()
	got := r.send(s)
	if !strings.HasPrefix(got, fmt.Sprint(code)) {
		r.t.Fatalf("%q: got %q, want %d", firstLine(s), got, code)
	}
	return got
}

func TestChunkingRelaysByteForByte(t *testing.T) {
	h := newHarness(t)
	r := h.openTx(t)
	half := len(plainMsg) / 2
	r.sendExpect(bdat(plainMsg[:half], false), 250)
	line := r.sendExpect(bdat(plainMsg[half:], true), 250)
	if !strings.Contains(line, "Ok: queued as NH1 (id ") {
		t.Errorf("final reply %q lacks the next hop's text and the id", line)
	}
	d := h.nh.Received()
	if len(d) != 1 {
		t.Fatalf("next hop got %d messages, want 1", len(d))
	}
	body, err := testutil.StripReceived(d[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != plainMsg {
		t.Errorf("next hop got\n%q\nwant\n%q", body, plainMsg)
	}
	if res := h.policy.Results(); len(res) != 1 || res[0].Outcome != OutcomeAccepted {
		t.Errorf("results = %+v, want one accepted", res)
	}
}

// smugglingCases are message contents that try to end the data early at
// a next hop that is lax about line endings, each followed by a command.
var smugglingCases = []struct{ name, data string }{
	{"bare LF dot bare LF", "Subject: a\r\n\r\nhello\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.org>\nDATA\nSubject: smuggled\n\nboo\r\n"},
	{"LF dot CRLF", "Subject: a\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\n"},
	{"CRLF dot LF", "Subject: a\r\n\r\nhello\r\n.\nMAIL FROM:<evil@example.com>\r\n"},
	{"CR dot CR", "Subject: a\r\n\r\nhello\r.\rMAIL FROM:<evil@example.com>\r\n"},
	{"CR dot CRLF", "Subject: a\r\n\r\nhello\r.\r\nMAIL FROM:<evil@example.com>\r\n"},
	{"CRLF dot CR", "Subject: a\r\n\r\nhello\r\n.\rMAIL FROM:<evil@example.com>\r\n"},
}

// checkOneMessage checks that the last delivery kept the smuggled command
// inside the message and that no line ending other than CRLF reached the
// next hop.
func checkOneMessage(t *testing.T, d []testutil.Delivery, want int) {
	t.Helper()
	if len(d) != want {
		t.Fatalf("next hop has %d messages, want %d", len(d), want)
	}
	last := d[len(d)-1]
	if last.From != "alice@example.com" || !bytes.Contains(last.Data, []byte("MAIL FROM:<evil@example.com>")) {
		t.Errorf("smuggled command was not kept inside the message: %q", last.Data)
	}
	for i, c := range last.Data {
		if c == '\r' && (i+1 == len(last.Data) || last.Data[i+1] != '\n') {
			t.Fatalf("bare CR at %d reached the next hop: %q", i, last.Data)
		}
		if c == '\n' && (i == 0 || last.Data[i-1] != '\r') {
			t.Fatalf("bare LF at %d reached the next hop: %q", i, last.Data)
		}
	}
}

func TestSmugglingWithBareCRStaysOneMessage(t *testing.T) {
	h := newHarness(t)
	for i, tc := range smugglingCases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.openTx(t)
			r.expect("DATA", 354)
			r.w.WriteString(tc.data)
			r.expect(".", 250)
			checkOneMessage(t, h.nh.Received(), i+1)
		})
	}
}

func TestChunkingSmugglingStaysOneMessage(t *testing.T) {
	h := newHarness(t)
	cases := append([]struct{ name, data string }{
		// Inside a chunk, CRLF.CRLF is plain content.
		{"CRLF dot CRLF inside a chunk", "Subject: a\r\n\r\nhello\r\n.\r\nMAIL FROM:<evil@example.com>\r\n"},
	}, smugglingCases...)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.openTx(t)
			// Split the chunk right after the dot, where a lax next hop
			// would see the end of data.
			cut := strings.Index(tc.data, ".") + 1
			r.sendExpect(bdat(tc.data[:cut], false), 250)
			r.sendExpect(bdat(tc.data[cut:], true), 250)
			checkOneMessage(t, h.nh.Received(), i+1)
		})
	}
}

// TestChunkingPipelinedReset sends, in one write per round, a transaction
// reset in the middle of a BDAT transfer followed by a whole one: go-smtp
// runs Data in its own goroutine during BDAT, so the RSET, MAIL and RCPT
// arrive while the first transfer's Data may still run. Run with -race.
func TestChunkingPipelinedReset(t *testing.T) {
	h := newHarness(t)
	const conns, rounds = 4, 10
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.authed(t)
			for i := 0; i < rounds; i++ {
				msg := fmt.Sprintf("Subject: c%d m%d\r\n\r\nbody %d/%d\r\n", c, i, c, i)
				var b strings.Builder
				b.WriteString("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n")
				b.WriteString(bdat("Subject: abandoned\r\n", false))
				b.WriteString("RSET\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\n")
				b.WriteString(bdat(msg[:10], false))
				b.WriteString(bdat(msg[10:], true))
				r.w.WriteString(b.String())
				r.w.Flush()
				for j, want := range []string{"250", "250", "250", "250", "250", "250", "250", "250 2.0.0 Ok: queued"} {
					if got := r.readReply(); !strings.HasPrefix(got, want) {
						t.Errorf("conn %d round %d reply %d = %q, want %s", c, i, j, got, want)
						return
					}
				}
			}
			r.expect("QUIT", 221)
		}()
	}
	wg.Wait()
	d := h.nh.Received()
	if len(d) != conns*rounds {
		t.Fatalf("next hop got %d messages, want %d", len(d), conns*rounds)
	}
	for _, m := range d {
		if strings.Join(m.Rcpts, ",") != "carol@example.org" || bytes.Contains(m.Data, []byte("abandoned")) {
			t.Errorf("delivery to %v holds %q: the reset transfer leaked into it", m.Rcpts, m.Data)
		}
	}
	accepted, reset := 0, 0
	for _, res := range h.policy.Results() {
		switch res.Outcome {
		case OutcomeAccepted:
			accepted++
		case "":
			reset++
		}
	}
	if accepted != conns*rounds || reset != conns*rounds {
		t.Errorf("results: %d accepted, %d reset; want %d of each", accepted, reset, conns*rounds)
	}
}

func TestChunkingPipelinedTransactions(t *testing.T) {
	h := newHarness(t)
	r := h.authed(t)
	var b strings.Builder
	for i := 0; i < 3; i++ {
		b.WriteString("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n")
		if i == 1 {
			b.WriteString("RSET\r\n")
			continue
		}
		b.WriteString(bdat(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i), true))
	}
	b.WriteString("QUIT\r\n")
	r.w.WriteString(b.String())
	r.w.Flush()
	for i, w := range []int{250, 250, 250, 250, 250, 250, 250, 250, 250, 221} {
		if line := r.readReply(); !strings.HasPrefix(line, fmt.Sprint(w)) {
			t.Fatalf("reply %d = %q, want %d", i, line, w)
		}
	}
	d := h.nh.Received()
	if len(d) != 2 || !bytes.Contains(d[0].Data, []byte("body 0")) || !bytes.Contains(d[1].Data, []byte("body 2")) {
		t.Fatalf("deliveries = %d, want m0 and m2", len(d))
	}
}

func TestChunkingRefusals(t *testing.T) {
	h := newHarness(t, func(o *Options, _ *ListenerOptions) { o.MaxMessageBytes = 4096 })
	t.Run("policy refusal", func(t *testing.T) {
		r := h.openTx(t)
		msg := strings.Replace(plainMsg, "Subject: hello", "Subject: REFUSE me", 1)
		if got := r.send(bdat(msg, true)); !strings.HasPrefix(got, "550 5.7.1 [OG-SPAM]") {
			t.Errorf("refused message got %q", got)
		}
		r.expect("NOOP", 250)
	})
	t.Run("too large", func(t *testing.T) {
		r := h.openTx(t)
		r.sendExpect(bdat(strings.Repeat("x", 3000), false), 250)
		if got := r.send(bdat(strings.Repeat("y", 3000), true)); !strings.HasPrefix(got, "552") {
			t.Errorf("oversized message got %q, want 552", got)
		}
	})
	t.Run("RCPT during the transfer", func(t *testing.T) {
		r := h.openTx(t)
		r.sendExpect(bdat("Subject: x\r\n", false), 250)
		// go-smtp answers this one itself.
		if got := r.cmd("RCPT TO:<late@example.org>"); !strings.HasPrefix(got, "502") {
			t.Errorf("RCPT between chunks got %q, want 502", got)
		}
		r.sendExpect(bdat("\r\nbody\r\n", true), 250)
	})
	if n := len(h.nh.Received()); n != 1 {
		t.Errorf("next hop got %d messages, want only the one completed after the late RCPT", n)
	}
}
