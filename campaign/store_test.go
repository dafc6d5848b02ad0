package campaign

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newStore(t testing.TB, opt Options) (*Store, *clock) {
	t.Helper()
	clk := newClock()
	if opt.Now == nil {
		opt.Now = clk.now
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func signal(r Result, k SignalKind) (Signal, bool) {
	for _, s := range r.Signals {
		if s.Kind == k {
			return s, true
		}
	}
	return Signal{}, false
}

func TestNormalise(t *testing.T) {
	tests := []struct {
		name, text string
		per        []string
		want       string
	}{
		{"case and punctuation", "Hello, World! It's GREAT.", nil, "hello world it s great"},
		{"numbers and digit tokens", "Order 12345 costs 9.99 EUR, code A7X2, ref abc", nil, "order costs eur code ref abc"},
		{"addresses", "Write to john.smith@example.net or <mailto:x@y.example>", nil, "write to or"},
		{"link query and long path", "Go https://Click.Example.com/ls/click/aGVsbG8td29ybGQtdGhpcy1pcy1sb25n?upn=1&x=2#frag now",
			nil, "go click.example.com/ls/click now"},
		{"link digit segments and labels", "see http://u4711.mail.example.org:8080/r/a1b2/offer/", nil, "see #.mail.example.org/r/offer"},
		{"www link", "visit www.shop.example/sale?ref=me", nil, "visit www.shop.example/sale"},
		{"per recipient words", "Dear John Smith, hi jsmith", []string{"John Smith", "jsmith"}, "dear hi"},
		{"local part split", "Hi John, welcome Smith", []string{"john.smith"}, "hi welcome"},
		{"docs/campaigns.md example", "Dear John Smith, your parcel DE123456789 costs EUR 2.99: https://track.example/confirm/8f3a?uid=42&utm_source=mail",
			[]string{"John Smith"}, "dear your parcel costs eur track.example/confirm"},
		{"cjk runes", "会議は明日です", nil, "会 議 は 明 日 で す"},
		{"cyrillic lowered", "Ваш ЗАКАЗ отправлен", nil, "ваш заказ отправлен"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(Normalise(tt.text, tt.per), " ")
			if got != tt.want {
				t.Errorf("Normalise(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestComputeShortTexts(t *testing.T) {
	tests := []struct {
		name      string
		in        Input
		sig, exct bool
	}{
		{"short reply", Input{Subject: "Re: lunch", Text: "Thanks, see you tomorrow at 12!"}, false, false},
		{"short with link", Input{Subject: "hey", Text: "look at this https://evil.example/win?u=42"}, false, true},
		{"long enough", Input{Subject: "Quarterly figures", Text: "Please find the summary of the quarterly figures below and send your comments before Friday"}, true, false},
		{"empty", Input{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Compute(tt.in)
			if f.HasSig != tt.sig || f.HasExact != tt.exct {
				t.Errorf("HasSig, HasExact = %v, %v; want %v, %v (words %d)", f.HasSig, f.HasExact, tt.sig, tt.exct, f.Words)
			}
		})
	}
	// Two short link messages that differ only per recipient are one.
	a := Compute(Input{Text: "Hi Anna, look https://evil.example/win?u=42", PerRecipient: []string{"Anna"}})
	b := Compute(Input{Text: "Hi Boris, look https://evil.example/win?u=97", PerRecipient: []string{"Boris"}})
	if !a.HasExact || a.Exact != b.Exact {
		t.Errorf("short link texts: exact %x and %x, want equal", a.Exact, b.Exact)
	}
}

// The templated campaign: 30 copies with different greetings, names,
// links, numbers and dates, each from an identity of a different user,
// within an hour, are one campaign, and the user signal fires when the
// 11th user sends it (default K=10), naming the transactions.
func TestTemplatedCampaignIsOneCampaign(t *testing.T) {
	s, clk := newStore(t, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	var id string
	for i := range 30 {
		in := phishCopy(r, newRecipient(r))
		fp := Compute(in)
		res := s.Observe(&fp, Message{
			TxID: fmt.Sprintf("tx%02d", i), Identity: fmt.Sprintf("id%02d@cust%02d.example", i, i),
			User: fmt.Sprintf("user%02d", i), Recipients: 1, Verdict: Clean,
		})
		if i == 0 {
			id = res.Campaign
			if !res.New {
				t.Fatalf("first copy: New = false")
			}
		} else if res.Campaign != id {
			t.Fatalf("copy %d: campaign %s (similarity %.2f), want %s", i, res.Campaign, res.Similarity, id)
		}
		sig, ok := signal(res, SignalUsers)
		switch {
		case i < 10 && ok:
			t.Fatalf("copy %d (%d users): user signal %+v, want none", i, i+1, sig)
		case i >= 10 && !ok:
			t.Fatalf("copy %d (%d users): no user signal", i, i+1)
		case ok:
			// The count is exact up to MaxEvidence (default 25).
			want := min(i+1, 25)
			if sig.Action != Lock || sig.Count != want || sig.Saturated != (i+1 >= 25) || sig.Threshold != 10 || sig.Crossed != (i == 10) {
				t.Errorf("copy %d: signal %+v, want lock with count %d, threshold 10, crossed %v", i, sig, want, i == 10)
			}
			if len(sig.Evidence) != want || sig.Evidence[0].TxID != fmt.Sprintf("tx%02d", i) {
				t.Errorf("copy %d: %d evidence, newest %+v", i, len(sig.Evidence), sig.Evidence[0])
			}
			if !strings.Contains(sig.Reason, id) {
				t.Errorf("reason %q does not name campaign %s", sig.Reason, id)
			}
		}
		clk.add(time.Minute)
	}
	c, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Messages != 30 || c.Identities != 30 || c.Users != 30 || c.Clean != 30 || len(c.Members) != 30 || c.SampleTx != "tx00" {
		t.Errorf("campaign %+v, want 30 messages, identities, users, clean verdicts and members, sample tx00", c)
	}
	if got := s.Stats().Campaigns; got != 1 {
		t.Errorf("store holds %d campaigns, want 1", got)
	}
}

// The user signal counts distinct users within the window: one user with
// many identities, or users spread over more than an hour, do not fire.
func TestUserSignalWindowAndDistinctUsers(t *testing.T) {
	s, clk := newStore(t, Options{})
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 30 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res := s.Observe(&fp, Message{TxID: fmt.Sprint(i), Identity: fmt.Sprintf("box%d@one.example", i), User: "one", Recipients: 1})
		if sig, ok := signal(res, SignalUsers); ok {
			t.Fatalf("one user, 30 identities: signal %+v", sig)
		}
	}
	s2, clk2 := newStore(t, Options{})
	_ = clk
	for i := range 30 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res := s2.Observe(&fp, Message{TxID: fmt.Sprint(i), Identity: fmt.Sprintf("u%d@x.example", i), User: fmt.Sprint("u", i), Recipients: 1})
		if sig, ok := signal(res, SignalUsers); ok {
			t.Fatalf("one user every 7 minutes: signal at %d: %+v", i, sig)
		}
		clk2.add(7 * time.Minute) // at most 9 users in any hour
	}
}

func TestRecipientSignal(t *testing.T) {
	s, _ := newStore(t, Options{RecipientThreshold: 100})
	r := rand.New(rand.NewPCG(5, 6))
	crossed := 0
	for i := range 10 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res := s.Observe(&fp, Message{TxID: fmt.Sprint(i), Identity: "bulk@x.example", User: "x", Recipients: 30})
		sig, ok := signal(res, SignalRecipients)
		if want := (i+1)*30 > 100; ok != want {
			t.Fatalf("message %d (%d recipients): signal %v, want %v", i, (i+1)*30, ok, want)
		}
		if ok {
			if sig.Action != Report || sig.Count != (i+1)*30 {
				t.Errorf("signal %+v, want report with count %d", sig, (i+1)*30)
			}
			if sig.Crossed {
				crossed++
			}
		}
	}
	if crossed != 1 {
		t.Errorf("crossed %d times, want 1", crossed)
	}
}

// Ordinary mail: every ham message of the repository's corpora, each from
// an identity of its own user within one hour, forms no campaign with
// another and raises no signal.
func TestOrdinaryMailIsNotMerged(t *testing.T) {
	s, clk := newStore(t, Options{})
	ham := hamCorpus(t)
	byCampaign := map[string][]string{}
	fingerprinted := 0
	for i, m := range ham {
		fp := Compute(m.in)
		if !fp.Empty() {
			fingerprinted++
		}
		res := s.Observe(&fp, Message{TxID: m.name, Identity: fmt.Sprintf("id%d@c%d.example", i, i), User: fmt.Sprint("user", i), Recipients: 1})
		if len(res.Signals) != 0 {
			t.Errorf("%s: signals %+v", m.name, res.Signals)
		}
		if res.Campaign != "" {
			byCampaign[res.Campaign] = append(byCampaign[res.Campaign], m.name)
		}
		clk.add(10 * time.Second)
	}
	for id, names := range byCampaign {
		if len(names) > 1 {
			t.Errorf("campaign %s merges %d ordinary messages: %v", id, len(names), names)
		}
	}
	if fingerprinted < 30 {
		t.Errorf("only %d of %d ham messages got a fingerprint, want at least 30", fingerprinted, len(ham))
	}
	t.Logf("%d ham messages, %d fingerprinted, %d campaigns", len(ham), fingerprinted, len(byCampaign))
}

func TestEvictionBounds(t *testing.T) {
	const max = 100
	s, clk := newStore(t, Options{MaxEntries: max, Window: time.Hour})
	r := rand.New(rand.NewPCG(7, 8))
	var first string
	for i := range 1000 {
		fp := Compute(Input{Text: fiveKB(r)[:600]})
		res := s.Observe(&fp, Message{TxID: fmt.Sprint(i), Identity: "a", User: "a"})
		if i == 0 {
			first = res.Campaign
		}
		st := s.Stats()
		if st.Entries > max || st.Campaigns > max {
			t.Fatalf("after %d messages: %+v, want at most %d entries and campaigns", i+1, st, max)
		}
		if n := s.recent.bands.len(); n > max*Bands {
			t.Fatalf("band index holds %d keys, want at most %d", n, max*Bands)
		}
	}
	if _, err := s.Get(first); !errors.Is(err, ErrNotFound) {
		t.Errorf("oldest campaign still there: err %v", err)
	}
	// The window: everything leaves an hour after it was seen, without
	// waiting for the next message.
	last := s.List(Filter{Limit: 1})[0].ID
	clk.add(time.Hour + time.Second)
	if _, err := s.Get(last); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after the window: err %v, want ErrNotFound", err)
	}
	if got := s.List(Filter{}); len(got) != 0 {
		t.Errorf("List after the window: %d campaigns, want 0", len(got))
	}
	fp := Compute(Input{Text: "a wholly different message that starts the only campaign left in the store after the window"})
	s.Observe(&fp, Message{TxID: "last", Identity: "b", User: "b"})
	if st := s.Stats(); st.Entries != 1 || st.Campaigns != 1 {
		t.Errorf("after the window: %+v, want 1 entry and 1 campaign", st)
	}
	if n := s.recent.bands.len(); n > Bands {
		t.Errorf("band index holds %d keys after the window, want at most %d", n, Bands)
	}
}

func TestMemberBounds(t *testing.T) {
	s, _ := newStore(t, Options{MaxUsers: 20, MaxIdentities: 20, MaxEvidence: 15})
	r := rand.New(rand.NewPCG(9, 10))
	var res Result
	for i := range 200 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res = s.Observe(&fp, Message{TxID: fmt.Sprint(i), Identity: fmt.Sprint("i", i), User: fmt.Sprint("u", i), Recipients: 1})
	}
	c, err := s.Get(res.Campaign)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Members) != 20 || c.Members[0].Identity != "i199" || c.Identities != 200 || c.Users != 200 {
		t.Errorf("members %d (newest %q), identities %d, users %d; want 20, i199, 200, 200", len(c.Members), c.Members[0].Identity, c.Identities, c.Users)
	}
	sig, ok := signal(res, SignalUsers)
	if !ok || sig.Count != 15 || !sig.Saturated || len(sig.Evidence) != 15 {
		t.Errorf("user signal %+v, want count 15 saturated", sig)
	}
}

func TestConfirmThenBlock(t *testing.T) {
	s, clk := newStore(t, Options{Window: time.Hour})
	r := rand.New(rand.NewPCG(11, 12))
	fp := Compute(phishCopy(r, newRecipient(r)))
	first := s.Observe(&fp, Message{TxID: "t0", Identity: "a@x", User: "a", Recipients: 1})
	if len(first.Signals) != 0 {
		t.Fatalf("before confirmation: %+v", first.Signals)
	}
	if err := s.Confirm("NOSUCHCAMPAIGN00", "op"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Confirm(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.Confirm(first.Campaign, "operator alice"); err != nil {
		t.Fatal(err)
	}
	// A near-duplicate from another identity of another user is blocked.
	for i := range 5 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		res := s.Observe(&fp, Message{TxID: fmt.Sprint("t", i+1), Identity: fmt.Sprint("b", i, "@y"), User: fmt.Sprint("b", i), Recipients: 1, Verdict: Clean})
		sig, ok := res.Strongest()
		if !ok || sig.Kind != SignalConfirmed || sig.Action != Block || res.Campaign != first.Campaign || !strings.Contains(sig.Reason, first.Campaign) {
			t.Fatalf("copy %d: result %+v, want a block naming %s", i, res, first.Campaign)
		}
	}
	// Ordinary mail is not.
	for _, m := range hamCorpus(t)[:40] {
		fp := Compute(m.in)
		if res := s.Observe(&fp, Message{TxID: m.name, Identity: "h", User: "h"}); len(res.Signals) != 0 {
			t.Errorf("%s: %+v", m.name, res.Signals)
		}
	}
	c, _ := s.Get(first.Campaign)
	if !c.Confirmed || c.ConfirmedBy != "operator alice" || c.Blocked != 5 || c.Spam != 5 || c.Clean != 1 {
		t.Errorf("campaign %+v, want confirmed by operator alice, 5 blocked counted as spam, 1 clean", c)
	}
	// Past the recent window the confirmed fingerprints still block.
	clk.add(2 * time.Hour)
	fp = Compute(phishCopy(r, newRecipient(r)))
	if res := s.Observe(&fp, Message{TxID: "late", Identity: "z", User: "z"}); res.Campaign != first.Campaign || len(res.Signals) == 0 || res.Signals[0].Action != Block {
		t.Errorf("after the window: %+v, want a block by %s", res, first.Campaign)
	}
	// Withdrawn, it no longer blocks.
	if err := s.Unconfirm(first.Campaign); err != nil {
		t.Fatal(err)
	}
	fp = Compute(phishCopy(r, newRecipient(r)))
	if res := s.Observe(&fp, Message{TxID: "after", Identity: "z", User: "z"}); len(res.Signals) != 0 {
		t.Errorf("after Unconfirm: %+v", res.Signals)
	}
}

func TestConfirmMessage(t *testing.T) {
	s, _ := newStore(t, Options{})
	r := rand.New(rand.NewPCG(13, 14))
	if _, err := s.ConfirmMessage(&Fingerprint{}, "scanner"); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v, want ErrEmpty", err)
	}
	fp := Compute(phishCopy(r, newRecipient(r)))
	id, err := s.ConfirmMessage(&fp, "scanner clamav")
	if err != nil {
		t.Fatal(err)
	}
	fp2 := Compute(phishCopy(r, newRecipient(r)))
	res := s.Observe(&fp2, Message{TxID: "t1", Identity: "q", User: "q"})
	if sig, ok := res.Strongest(); !ok || sig.Action != Block || res.Campaign != id {
		t.Errorf("result %+v, want block by %s", res, id)
	}
	// A confirmed attachment blocks whatever the text says.
	mal := AttachmentDigest([]byte("%PDF-1.7 malicious"))
	afp := Compute(Input{Subject: "invoice", Text: "see attached", Attachments: []Digest{mal}})
	aid, err := s.ConfirmMessage(&afp, "scanner")
	if err != nil {
		t.Fatal(err)
	}
	other := Compute(Input{Subject: "Quarterly figures", Text: "Please find the summary of the quarterly figures attached and send comments before Friday", Attachments: []Digest{mal}})
	if res := s.Observe(&other, Message{TxID: "t2", Identity: "w", User: "w"}); res.Campaign != aid || len(res.Signals) == 0 || res.Signals[0].Action != Block {
		t.Errorf("attachment: %+v, want block by %s", res, aid)
	}
}

func TestList(t *testing.T) {
	s, clk := newStore(t, Options{})
	r := rand.New(rand.NewPCG(15, 16))
	var ids []string
	for k := range 3 {
		base := fiveKB(r)
		for j := range k + 1 {
			fp := Compute(Input{Subject: "s", Text: base + strings.Repeat(" extra words", j)})
			res := s.Observe(&fp, Message{TxID: fmt.Sprint(k, j), Identity: fmt.Sprint("i", j), User: fmt.Sprint("u", j), Recipients: 2})
			if j == 0 {
				ids = append(ids, res.Campaign)
			}
			clk.add(time.Minute)
		}
	}
	all := s.List(Filter{})
	if len(all) != 3 || all[0].ID != ids[2] || all[2].ID != ids[0] {
		t.Fatalf("List() = %d campaigns, want %v newest first", len(all), ids)
	}
	if got := s.List(Filter{MinMessages: 2}); len(got) != 2 {
		t.Errorf("MinMessages 2: %d campaigns, want 2", len(got))
	}
	if got := s.List(Filter{Identity: "i2"}); len(got) != 1 || got[0].ID != ids[2] {
		t.Errorf("Identity i2: %v", got)
	}
	if got := s.List(Filter{Limit: 1, Before: all[0].Last}); len(got) != 1 || got[0].ID != ids[1] {
		t.Errorf("page 2: %v, want %s", got, ids[1])
	}
	if got := s.List(Filter{Confirmed: true}); len(got) != 0 {
		t.Errorf("Confirmed: %d campaigns, want 0", len(got))
	}
	for _, id := range ids {
		if len(id) != 16 || strings.Trim(id, crockford) != "" {
			t.Errorf("id %q is not 16 characters of Crockford base32", id)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []Options{
		{MaxEntries: -1},
		{Similarity: 1.5},
		{UserThreshold: 10, MaxUsers: 5},
		{UserThreshold: 10, MaxEvidence: 5},
		{Window: -time.Second},
	}
	for i, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("case %d: New(%+v) succeeded", i, o)
		}
	}
}

// 50 sessions observe at once while the console lists, reads, confirms
// and snapshots; run with -race.
func TestConcurrentUse(t *testing.T) {
	s, _ := newStore(t, Options{})
	const sessions, each = 50, 30
	var wg sync.WaitGroup
	for g := range sessions {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for i := range each {
				var in Input
				if i%2 == 0 {
					in = phishCopy(r, newRecipient(r))
				} else {
					in = Input{Text: fiveKB(r)[:800]}
				}
				fp := Compute(in)
				s.Observe(&fp, Message{TxID: fmt.Sprint(g, "-", i), Identity: fmt.Sprint("id", g), User: fmt.Sprint("u", g), Recipients: 1})
			}
		})
	}
	stop := make(chan struct{})
	var admin sync.WaitGroup
	admin.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, c := range s.List(Filter{Limit: 5}) {
				s.Get(c.ID)
				if c.Users > 20 {
					s.Confirm(c.ID, "op")
				}
			}
			_ = s.Encode()
		}
	})
	wg.Wait()
	close(stop)
	admin.Wait()
	var total uint64
	for _, c := range s.List(Filter{Limit: 1000}) {
		total += c.Messages
	}
	if total != sessions*each {
		t.Errorf("campaigns hold %d messages, want %d", total, sessions*each)
	}
}

// A scanner confirming every copy of one big campaign does not push the
// other confirmed campaigns out of the bounded confirmed set.
func TestConfirmMessageCopiesDoNotFloodConfirmedSet(t *testing.T) {
	s, _ := newStore(t, Options{MaxConfirmed: 10})
	other := Compute(Input{Subject: "Win a prize", Text: "Dear friend, you have been selected for a cash prize; claim it today by replying with your bank details and full name"})
	otherID, err := s.ConfirmMessage(&other, "scanner")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(61, 62))
	for range 100 {
		fp := Compute(phishCopy(r, newRecipient(r)))
		if _, err := s.ConfirmMessage(&fp, "scanner"); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Confirmed > 2 || st.Campaigns != 2 {
		t.Errorf("Stats = %+v, want at most 2 confirmed fingerprints in 2 campaigns", st)
	}
	again := Compute(Input{Subject: "Win a prize", Text: "Dear Anna, you have been selected for a cash prize; claim it today by replying with your bank details and full name", PerRecipient: []string{"Anna"}})
	if res := s.Observe(&again, Message{TxID: "t", Identity: "i", User: "u"}); res.Campaign != otherID || len(res.Signals) == 0 {
		t.Errorf("first confirmed campaign: %+v, want a block by %s", res, otherID)
	}
}
