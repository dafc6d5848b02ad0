package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// populated returns a store holding a 30-user campaign, a confirmed one,
// ordinary mail, a short-link message and an attachment-only message.
func populated(t testing.TB, opt Options) (*Store, *clock, *rand.Rand) {
	s, clk := newStore(t, opt)
	r := rand.New(rand.NewPCG(21, 22))
	for i := range 30 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		s.Observe(&fp, Message{TxID: fmt.Sprint("p", i), Identity: fmt.Sprint("p", i, "@x"), User: fmt.Sprint("pu", i), Recipients: 3, Verdict: Verdict(i % 3)})
		clk.add(time.Second)
	}
	for i, m := range hamCorpus(t)[:20] {
		fp := Compute(m.in)
		s.Observe(&fp, Message{TxID: m.name, Identity: fmt.Sprint("h", i), User: "hu", Recipients: 1})
		clk.add(time.Second)
	}
	spam := Compute(Input{Subject: "Win a prize", Text: "Dear friend, you have been selected for a cash prize; claim it today by replying with your bank details and full name"})
	if _, err := s.ConfirmMessage(&spam, "scanner"); err != nil {
		t.Fatal(err)
	}
	short := Compute(Input{Text: "look https://evil.example/win?u=42"})
	s.Observe(&short, Message{TxID: "short", Identity: "s", User: "s"})
	att := Compute(Input{Text: "see attached", Attachments: []Digest{AttachmentDigest([]byte("payload"))}})
	s.Observe(&att, Message{TxID: "att", Identity: "a", User: "a"})
	return s, clk, r
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s, clk, r := populated(t, Options{})
	data := s.Encode()

	s2, err := New(Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Decode(data); err != nil {
		t.Fatal(err)
	}
	if got, want := s2.Stats(), s.Stats(); got != want {
		t.Errorf("Stats after Decode = %+v, want %+v", got, want)
	}
	want, got := s.List(Filter{Limit: 1000}), s2.List(Filter{Limit: 1000})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List after Decode differs:\n got %+v\nwant %+v", got, want)
	}
	for _, c := range want {
		a, _ := s.Get(c.ID)
		b, err := s2.Get(c.ID)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("Get(%s) after Decode = %+v, %v; want %+v", c.ID, b, err, a)
		}
	}
	if again := s2.Encode(); !bytes.Equal(again, data) {
		t.Errorf("Encode after Decode differs (%d vs %d bytes)", len(again), len(data))
	}
	// The decoded store goes on matching: a near-duplicate joins the
	// 30-user campaign, and the confirmed message still blocks.
	fp := Compute(phishCopy(r, newRecipient(r)))
	res := s2.Observe(&fp, Message{TxID: "new", Identity: "n", User: "n"})
	if res.New {
		t.Errorf("near-duplicate after Decode started a new campaign")
	}
	spam := Compute(Input{Subject: "Win a prize", Text: "Dear Anna, you have been selected for a cash prize; claim it today by replying with your bank details and full name",
		PerRecipient: []string{"Anna"}})
	if res := s2.Observe(&spam, Message{TxID: "spam", Identity: "m", User: "m"}); len(res.Signals) == 0 || res.Signals[0].Action != Block {
		t.Errorf("confirmed campaign after Decode: %+v, want a block", res)
	}
	if err := s2.Decode(data); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("Decode into a used store = %v, want ErrNotEmpty", err)
	}
}

func TestDecodeBounds(t *testing.T) {
	s, clk, _ := populated(t, Options{})
	data := s.Encode()
	small, err := New(Options{Now: clk.now, MaxEntries: 10, MaxConfirmed: 1, MaxUsers: 11, MaxIdentities: 5, MaxEvidence: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := small.Decode(data); err != nil {
		t.Fatal(err)
	}
	st := small.Stats()
	if st.Entries != 10 || st.Confirmed != 1 || st.Campaigns > 11 {
		t.Errorf("Stats = %+v, want 10 entries, 1 confirmed, at most 11 campaigns", st)
	}
	for _, c := range small.List(Filter{}) {
		g, _ := small.Get(c.ID)
		if len(g.Members) > 5 {
			t.Errorf("campaign %s keeps %d members, want at most 5", c.ID, len(g.Members))
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	s, clk, _ := populated(t, Options{})
	data := s.Encode()
	cases := map[string][]byte{
		"empty":        nil,
		"magic":        []byte("NOTCAMP\x01"),
		"version":      append([]byte(magic), 99),
		"huge count":   append([]byte(magic+"\x01"), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"trailing":     append(bytes.Clone(data), 0),
		"bad campaign": append([]byte(magic+"\x01"), 1, 3, 'a', 'b', 'c'),
	}
	for cut := 7; cut < len(data); cut += 1 + len(data)/200 {
		cases[fmt.Sprint("cut at ", cut)] = data[:cut]
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			s2, _ := New(Options{Now: clk.now})
			err := s2.Decode(b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, want ErrCorrupt", err)
			}
			if st := s2.Stats(); st != (Stats{}) {
				t.Errorf("store changed by a failed Decode: %+v", st)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	s, _, _ := populated(f, Options{})
	f.Add(s.Encode())
	small, _ := New(Options{})
	fp := Compute(Input{Text: "one two three four five six seven eight nine ten eleven twelve"})
	small.Observe(&fp, Message{TxID: "t", Identity: "i", User: "u"})
	f.Add(small.Encode())
	f.Add([]byte(magic + "\x01\x00\x00\x00"))
	clk := newClock()
	opt := Options{Now: clk.now, MaxEntries: 50, MaxConfirmed: 10, MaxUsers: 20, MaxIdentities: 20, MaxEvidence: 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Decode(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		st := s.Stats()
		if st.Entries > 50 || st.Confirmed > 10 || st.Campaigns > 60 {
			t.Fatalf("Stats %+v past the bounds", st)
		}
		e1 := s.Encode()
		s2, _ := New(opt)
		if err := s2.Decode(e1); err != nil {
			t.Fatalf("Decode(Encode()) = %v", err)
		}
		if e2 := s2.Encode(); !bytes.Equal(e1, e2) {
			t.Fatalf("Encode is not stable across Decode")
		}
		// The decoded store stays usable.
		fp := Compute(Input{Text: "one two three four five six seven eight nine ten eleven twelve"})
		s2.Observe(&fp, Message{TxID: "t", Identity: "i", User: "u"})
		s2.List(Filter{})
	})
}
