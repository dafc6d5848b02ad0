package campaign

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestConfirmationTravels: a campaign confirmed in store A is confirmed in
// store B (which saw none of its copies, or some under another id) by A's
// exemplars, through their encoding; B then blocks the copies, and a
// withdrawal travels the same way.
func TestConfirmationTravels(t *testing.T) {
	a, _ := newStore(t, Options{})
	b, _ := newStore(t, Options{})
	r := rand.New(rand.NewPCG(21, 22))
	var first Result
	for i := range 3 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res := a.Observe(&fp, Message{TxID: fmt.Sprint("a", i), Identity: "x", User: "x", Recipients: 1})
		if i == 0 {
			first = res
		}
	}
	// B saw one copy of its own, under its own id.
	fp := Compute(phishCopy(r, newRecipient(r)))
	own := b.Observe(&fp, Message{TxID: "b0", Identity: "y", User: "y", Recipients: 1})
	if _, err := a.ExemplarFingerprints("NOSUCHCAMPAIGN00"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if err := a.Confirm(first.Campaign, "operator"); err != nil {
		t.Fatal(err)
	}
	fps, err := a.ExemplarFingerprints(first.Campaign)
	if err != nil || len(fps) == 0 || len(fps) > maxShared {
		t.Fatalf("exemplars: %d, %v", len(fps), err)
	}
	for i := range fps {
		enc, err := fps[i].MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Fingerprint
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatal(err)
		}
		if b.Covers(&got) && i == 0 {
			t.Fatal("B's confirmed set covers the fingerprint before any confirmation")
		}
		id, err := b.ConfirmMessage(&got, "fleet:operator")
		if err != nil {
			t.Fatal(err)
		}
		if id != own.Campaign {
			t.Errorf("exemplar %d confirmed %s in B, want B's own %s", i, id, own.Campaign)
		}
		if !b.Covers(&got) {
			t.Errorf("exemplar %d not covered after its confirmation", i)
		}
	}
	next := Compute(phishCopy(r, newRecipient(r)))
	res := b.Observe(&next, Message{TxID: "b1", Identity: "z", User: "z", Recipients: 1})
	if sig, ok := res.Strongest(); !ok || sig.Action != Block {
		t.Fatalf("a copy on B after the shared confirmation: %+v, want a block", res)
	}
	if id := b.UnconfirmMatching(&fps[0]); id != own.Campaign {
		t.Errorf("UnconfirmMatching = %q, want %s", id, own.Campaign)
	}
	if id := b.UnconfirmMatching(&fps[0]); id != "" {
		t.Errorf("a second UnconfirmMatching = %q, want none", id)
	}
	next = Compute(phishCopy(r, newRecipient(r)))
	if res := b.Observe(&next, Message{TxID: "b2", Identity: "z", User: "z", Recipients: 1}); len(res.Signals) != 0 {
		t.Errorf("after the withdrawal: %+v", res.Signals)
	}
}

func TestFingerprintEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	cases := []Fingerprint{
		Compute(phishCopy(r, newRecipient(r))),
		Compute(Input{Text: "Hi Anna, look https://evil.example/win?u=42"}),
		Compute(Input{Text: "see attached", Attachments: []Digest{AttachmentDigest([]byte("x")), AttachmentDigest([]byte("y"))}}),
		{Quoted: true, HasExact: true, Exact: 7, Words: 3},
	}
	for i, fp := range cases {
		enc, err := fp.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Fingerprint
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(enc, again) || got.HasSig != fp.HasSig || got.Sig != fp.Sig || got.Exact != fp.Exact ||
			got.Quoted != fp.Quoted || got.Words != fp.Words || len(got.Attachments) != len(fp.Attachments) {
			t.Errorf("case %d: %+v after a round trip of %+v", i, got, fp)
		}
		for cut := range len(enc) {
			if err := new(Fingerprint).UnmarshalBinary(enc[:cut]); err == nil {
				t.Errorf("case %d: %d of %d bytes decoded", i, cut, len(enc))
			}
		}
	}
}

func FuzzFingerprintDecode(f *testing.F) {
	fp := Compute(Input{Text: "see attached https://x.example/a", Attachments: []Digest{AttachmentDigest([]byte("x"))}})
	enc, _ := fp.MarshalBinary()
	f.Add(enc)
	f.Add([]byte{1, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fp Fingerprint
		if fp.UnmarshalBinary(b) != nil {
			return
		}
		again, err := fp.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %x re-encodes as %x", b, again)
		}
	})
}
