package campaign

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOwnText(t *testing.T) {
	tests := []struct {
		name, text, own string
		quoted          bool
	}{
		{"no quotes", "Hello,\nsee you at noon.\n", "Hello,\nsee you at noon.\n", false},
		{"bottom quote", "Agreed.\n\n> Shall we meet at noon?\n>> Earlier text\n", "Agreed.\n\n", true},
		{"interleaved", "> question one\nanswer one\n  > question two\nanswer two", "answer one\nanswer two\n", true},
		{"attribution", "Count me in.\n\nOn Mon, 30 Nov 2026 at 09:00, Anna Weber <anna@example.org> wrote:\nthe whole post\nmore of it\n", "Count me in.\n\n", true},
		{"german attribution", "Passt.\nAm 30.11.2026 um 09:00 schrieb Anna Weber:\nder ganze Text\n", "Passt.\n", true},
		{"outlook", "Fine by me.\r\n-----Original Message-----\r\nFrom: Anna\r\nthe post\r\n", "Fine by me.\r\n", true},
		{"colon line is not attribution", "Agenda:\nitem one\n", "Agenda:\nitem one\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			own, quoted := ownText(tt.text)
			if own != tt.own || quoted != tt.quoted {
				t.Errorf("ownText(%q) = %q, %v; want %q, %v", tt.text, own, quoted, tt.own, tt.quoted)
			}
		})
	}
}

const post = `Dear all,

the annual general meeting of the allotment association takes place on Saturday in the
community hall. We will vote on the new water tariff, elect the board for the coming two
years and discuss the plans for the tool shed. Please bring your membership card; coffee
and cake are provided by the events committee. If you cannot attend, you may give a
written proxy to another member. The minutes of last year's meeting are on the notice
board and on the association's website.

Kind regards,
Anna Weber, secretary`

// Mailing-list traffic: a post, then replies from users of many customers
// within an hour, each with a line of its own above the full quote. The
// replies are not a botnet: no user signal, whatever their number. Replies
// with something to say of their own are fingerprinted on that.
func TestRepliesQuotingOnePostAreNotLocked(t *testing.T) {
	s, clk := newStore(t, Options{})
	fp := Compute(Input{Subject: "AGM on Saturday", Text: post})
	orig := s.Observe(&fp, Message{TxID: "post", Identity: "list@allotments.example", User: "list", Recipients: 300})
	short := []string{"Count me in.", "Thanks, see you there!", "I will bring a cake.", "Can't make it, sorry.", "+1"}
	quoteStyles := []func(string) string{
		func(p string) string {
			return "On Mon, 30 Nov 2026 at 09:00, Anna Weber wrote:\n" + prefixLines(p, "> ")
		},
		func(p string) string {
			return "-----Original Message-----\nFrom: Anna Weber\nSubject: AGM on Saturday\n\n" + p
		},
		func(p string) string { return prefixLines(p, ">") },
	}
	for i := range 30 {
		text := short[i%len(short)] + "\n\n" + quoteStyles[i%len(quoteStyles)](post)
		fp := Compute(Input{Subject: "Re: AGM on Saturday", Text: text})
		if !fp.Quoted {
			t.Fatalf("reply %d: fingerprint not marked quoted", i)
		}
		res := s.Observe(&fp, Message{TxID: fmt.Sprint("r", i), Identity: fmt.Sprintf("m%d@c%d.example", i, i), User: fmt.Sprint("c", i), Recipients: 1})
		if len(res.Signals) != 0 {
			t.Fatalf("reply %d: signals %+v", i, res.Signals)
		}
		if res.Campaign != orig.Campaign {
			t.Errorf("reply %d: campaign %s, want the post's %s", i, res.Campaign, orig.Campaign)
		}
		clk.add(time.Minute)
	}
	// A reply with a paragraph of its own is that paragraph.
	own := "I looked at the water tariff proposal and I think we should compare it with what the neighbouring association pays before we vote on it."
	a := Compute(Input{Subject: "Re: AGM on Saturday", Text: own + "\n\n" + prefixLines(post, "> ")})
	b := Compute(Input{Subject: "Re: AGM on Saturday", Text: own})
	if a.Quoted || !a.HasSig || a.Sig != b.Sig {
		t.Errorf("reply with its own paragraph: quoted %v, signature equal to the paragraph's %v", a.Quoted, a.Sig == b.Sig)
	}
}

// Quoting a confirmed spam does not get it through.
func TestQuotedSpamStillBlocked(t *testing.T) {
	s, _ := newStore(t, Options{})
	spam := Compute(Input{Subject: "Prize", Text: post})
	id, err := s.ConfirmMessage(&spam, "scanner")
	if err != nil {
		t.Fatal(err)
	}
	fp := Compute(Input{Subject: "Prize", Text: prefixLines(post, "> ")})
	res := s.Observe(&fp, Message{TxID: "q", Identity: "x", User: "x"})
	if sig, ok := res.Strongest(); !ok || sig.Action != Block || res.Campaign != id {
		t.Errorf("quoted copy: %+v, want a block by %s", res, id)
	}
}

func prefixLines(s, p string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = p + lines[i]
	}
	return strings.Join(lines, "\n")
}
