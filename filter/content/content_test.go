package content

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// names returns the readable names of d's features.
func names(d Doc) []string {
	var out []string
	e := Extractor{Names: func(_ uint32, n string) { out = append(out, n) }}
	e.Extract(&d)
	slices.Sort(out)
	return slices.Compact(out)
}

func TestTokeniser(t *testing.T) {
	for _, tc := range []struct {
		name      string
		doc       Doc
		want, not []string
	}{
		{"words, case, joiners", Doc{Body: "Don't miss: $100 OFF at shop.my-store.com!"},
			[]string{"w:don't", "w:miss", "w:$100", "w:off", "w:at", "w:shop.my-store.com", "b:don't miss"}, []string{"w:com", "w:100"}},
		{"zero-width and soft hyphen inside a word", Doc{Body: "V\u200biagra c\u00adasino"},
			[]string{"w:viagra", "w:casino"}, []string{"w:v", "w:iagra"}},
		{"look-alike letters", Doc{Body: "Pаypal account"}, // Cyrillic а
			[]string{"w:paypal", "x:w"}, nil},
		{"Cyrillic words stay as they are", Doc{Body: "Здравствуйте коллеги"},
			[]string{"w:здравствуйте", "w:коллеги"}, []string{"x:w"}},
		{"CJK bigrams", Doc{Body: "お知らせ"}, []string{"w:お知", "w:知ら", "w:らせ"}, nil},
		{"long words folded", Doc{Body: "abcdefghijklmnopqrstuvwxyz"}, []string{"l:abcdefghijkl"}, []string{"w:abcdefghijklmnopqrstuvwxyz"}},
		{"numbers by length", Doc{Body: "order 4821337"}, []string{"n:w7"}, []string{"w:4821337"}},
		{"one-letter words dropped", Doc{Body: "a b c"}, nil, []string{"w:a"}},
		{"subject, hosts, links, structure", Doc{Subject: "Invoice due", Hosts: []string{"bit.ly"},
			Structure: []Token{{Kind: "ct", Value: "text/html"}, {Kind: "html-only"}}},
			[]string{"s:invoice", "s:due", "h:bit.ly", "d:bit.ly", "k:1", "m:ct:text/html", "m:html-only"}, []string{"b:invoice due"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := names(tc.doc)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("got %q, want it to hold %q", got, w)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(got, n) {
					t.Errorf("got %q, want no %q", got, n)
				}
			}
		})
	}
}

// TestNamesMatchIDs checks that the ids Extract returns without names are
// those it names, so that explanations describe what was scored.
func TestNamesMatchIDs(t *testing.T) {
	d := Doc{Subject: "Hello there", Body: "Pаypal asks 12345 for お知らせ, see www", Hosts: []string{"x.example"},
		Structure: []Token{{Kind: "ct", Value: "text/plain"}}}
	var plain Extractor
	ids := slices.Clone(plain.Extract(&d))
	var named []uint32
	e := Extractor{Names: func(id uint32, _ string) { named = append(named, id) }}
	e.Extract(&d)
	slices.Sort(named)
	named = slices.Compact(named)
	if !slices.Equal(ids, named) {
		t.Errorf("got ids %v, named %v", ids, named)
	}
	if id := ID(prefixStructure, "ct:text/plain"); !slices.Contains(ids, id) {
		t.Errorf("structure token %x not hashed as its joined name", id)
	}
}

func TestModelRoundTrip(t *testing.T) {
	m := NewModel([]uint32{9, 3, 7, 3}, []float32{1, -2, 0.5, 1}, -1, 3, 5, "test model")
	if m.Len() != 3 || m.Weight(3) != -1 {
		t.Fatalf("got %d features, weight(3) %v; want duplicates summed", m.Len(), m.Weight(3))
	}
	got, err := Parse(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Version() != m.Version() || got.Info != "test model" || got.Suspect != 3 || got.Spam != 5 {
		t.Errorf("got %+v, want %+v", got, m)
	}
	f := Features{3, 7, 8}
	if a, b := got.Score(f), m.Score(f); a != b {
		t.Errorf("score after round trip %v, want %v", a, b)
	}
	bad := m.Marshal()
	copy(bad[len(bad)-4:], []byte{0, 0, 0xc0, 0x7f}) // the last weight: a NaN
	if _, err := Parse(bad); !errors.Is(err, ErrBadModel) {
		t.Errorf("non-finite weight: got %v, want ErrBadModel", err)
	}
	if _, err := Parse(bad[:len(bad)-3]); !errors.Is(err, ErrBadModel) {
		t.Errorf("truncated: got %v, want ErrBadModel", err)
	}
}

// memStore is a Store in memory, with a failure switch.
type memStore struct {
	data  []byte
	saves int
	fail  error
}

func (s *memStore) Load() ([]byte, error) { return s.data, nil }
func (s *memStore) Save(d []byte) error {
	if s.fail != nil {
		return s.fail
	}
	s.data, s.saves = slices.Clone(d), s.saves+1
	return nil
}

func TestLearnerLearnExportImportReset(t *testing.T) {
	seed := NewModel([]uint32{1, 2, 3}, []float32{4, 4, 4}, 0, 3, 5, "")
	st := &memStore{}
	l, err := NewLearner(seed, LearnerOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	f, other := Features{1, 2, 10}, Features{3, 20}
	before, after, err := l.Learn(f, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !(before > 3 && after < 3-DefaultMargin) {
		t.Errorf("ham lesson: score %.2f -> %.2f, want from above suspect to below suspect-margin", before, after)
	}
	if st.saves != 1 || !strings.HasSuffix(l.Version(), "+1") {
		t.Errorf("got %d saves, version %s; want the overlay saved and versioned", st.saves, l.Version())
	}
	otherScore, _ := l.Score(other)

	// A restart loads the overlay.
	l2, err := NewLearner(seed, LearnerOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := l2.Score(f); s != after {
		t.Errorf("after reload: %.3f, want %.3f", s, after)
	}
	// Export then Import into a fresh learner gives the same scores and a
	// later version.
	fresh, _ := NewLearner(seed, LearnerOptions{})
	if err := fresh.Import(l.Export()); err != nil {
		t.Fatal(err)
	}
	if s, _ := fresh.Score(other); s != otherScore {
		t.Errorf("imported: %.3f, want %.3f", s, otherScore)
	}
	if err := fresh.Import([]byte("not an overlay")); !errors.Is(err, ErrBadOverlay) {
		t.Errorf("garbage import: got %v, want ErrBadOverlay", err)
	}
	// Reset gives the seed's scores back.
	if err := l.Reset(); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.Score(f); s != seed.Score(f) || l.Version() != seed.Version() {
		t.Errorf("after reset: %.3f %s, want the seed's %.3f %s", s, l.Version(), seed.Score(f), seed.Version())
	}
	// A failing store is reported.
	st.fail = errors.New("disk full")
	if _, _, err := l.Learn(f, nil, true); err == nil {
		t.Error("learning with a failing store: got no error")
	}
}

// TestLearnerFixedFeatures checks that the shape features a lesson is told
// to leave alone keep their weight.
func TestLearnerFixedFeatures(t *testing.T) {
	seed := NewModel([]uint32{1, 2}, []float32{6, 6}, 0, 3, 5, "")
	l, _ := NewLearner(seed, LearnerOptions{})
	if _, _, err := l.Learn(Features{1, 2}, Features{2}, false); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.Score(Features{2}); s != seed.Score(Features{2}) {
		t.Errorf("fixed feature moved: %.3f, want %.3f", s, seed.Score(Features{2}))
	}
}

func TestLearnerBoundsOverlay(t *testing.T) {
	seed := NewModel([]uint32{1}, []float32{1}, 0, 3, 5, "")
	l, _ := NewLearner(seed, LearnerOptions{MaxOverlay: 1000})
	for i := range 30 {
		f := make(Features, 100)
		for j := range f {
			f[j] = uint32(i*100 + j + 10)
		}
		if _, _, err := l.Learn(f, nil, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Info().Features; n > 1000 {
		t.Errorf("overlay holds %d features, want at most 1000", n)
	}
}

func FuzzParseModel(f *testing.F) {
	f.Add(NewModel([]uint32{1, 2}, []float32{0.5, -1}, 0, 3, 5, "x").Marshal())
	f.Add([]byte("OGCMODEL"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must score and survive a round trip.
		m.Score(Features{1, 2, 3})
		if _, err := Parse(m.Marshal()); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzImportOverlay(f *testing.F) {
	seed := NewModel([]uint32{1}, []float32{1}, 0, 3, 5, "")
	l, _ := NewLearner(seed, LearnerOptions{})
	l.Learn(Features{1, 2, 3}, nil, true)
	f.Add(l.Export())
	f.Add([]byte("OGCOVER1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fresh, _ := NewLearner(seed, LearnerOptions{MaxOverlay: 1000})
		if err := fresh.Import(data); err != nil {
			if !errors.Is(err, ErrBadOverlay) {
				t.Fatalf("got %v, want ErrBadOverlay", err)
			}
			return
		}
		if n := fresh.Info().Features; n > 1000 {
			t.Fatalf("imported %d features past the bound 1000", n)
		}
	})
}

func FuzzExtract(f *testing.F) {
	f.Add("Subject", "Pаypal V\u200biagra $100 お知らせ abcdefghijklmnopqrstuvwxyz 12345", "bit.ly")
	f.Fuzz(func(t *testing.T, subject, body, host string) {
		var e Extractor
		d := Doc{Subject: subject, Body: body, Hosts: []string{host}}
		ids := e.Extract(&d)
		if !slices.IsSorted(ids) {
			t.Fatal("features not sorted")
		}
		// Every word makes at most a word, a bigram and a marker, plus
		// CJK bigrams: the count is bounded by the input's length.
		if len(ids) > 3*(len(subject)+len(body))+8 {
			t.Fatalf("%d features from %d bytes", len(ids), len(subject)+len(body))
		}
	})
}

func TestSortIDs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tmp []uint32
	for _, n := range []int{0, 1, 255, 256, 257, 1000, 5000} {
		ids := make([]uint32, n)
		for i := range ids {
			ids[i] = r.Uint32()
			if i%7 == 0 && i > 0 {
				ids[i] = ids[i-1] // duplicates
			}
		}
		want := slices.Clone(ids)
		slices.Sort(want)
		var got []uint32
		got, tmp = sortIDs(ids, tmp)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d: sortIDs differs from slices.Sort", n)
		}
	}
}

func TestModelLookupIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ids := []uint32{0, 1, 0xffff0000, 0xffffffff}
	for range 5000 {
		ids = append(ids, r.Uint32())
	}
	weights := make([]float32, len(ids))
	for i := range weights {
		weights[i] = float32(i%13) - 6
	}
	m := NewModel(ids, weights, 0, 0, 0, "")
	for i, id := range m.ids {
		if got := m.Weight(id); got != m.weights[i] {
			t.Fatalf("Weight(%#x) = %v, want %v", id, got, m.weights[i])
		}
	}
	for range 5000 {
		id := r.Uint32()
		_, in := slices.BinarySearch(m.ids, id)
		if got := m.find(id); (got >= 0) != in {
			t.Fatalf("find(%#x) = %d, present %v", id, got, in)
		}
	}
}
