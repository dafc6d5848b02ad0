package filter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outguard/outguard/internal/testutil"
)

const gapHeader = "From: a@example.com\r\nTo: b@example.org\r\nSubject: test"

var (
	textLeaf = testutil.Leaf{Body: []byte("hello there")}
	exeLeaf  = testutil.Leaf{Type: "application/octet-stream", Name: "invoice.exe", Body: []byte("MZ not really")}
	pngLeaf  = testutil.Leaf{Type: "image/png", Name: "logo.png", Body: []byte("\x89PNG")}
	zipLeaf  = func(z []byte) testutil.Leaf {
		return testutil.Leaf{Type: "application/zip", Name: "files.zip", Body: z}
	}
)

// noise returns n bytes that do not compress.
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func gapSet(gs []Gap) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Limit+"/"+g.Kind.String())
	}
	slices.Sort(out)
	return out
}

func TestGapsAtLimits(t *testing.T) {
	big := bytes.Repeat([]byte("lorem ipsum "), 1000)
	for _, tc := range []struct {
		name string
		raw  []byte
		lim  Limits
		want []string
	}{
		{"nothing cut", testutil.ManyParts(gapHeader, 3, exeLeaf), Limits{}, nil},
		{"text too deep", testutil.NestedMessage(gapHeader, 8, textLeaf), Limits{MaxDepth: 5}, []string{"max_depth/text"}},
		{"executable too deep", testutil.NestedMessage(gapHeader, 8, exeLeaf), Limits{MaxDepth: 5}, []string{"max_depth/executable"}},
		{"image too deep", testutil.NestedMessage(gapHeader, 8, pngLeaf), Limits{MaxDepth: 5}, []string{"max_depth/file"}},
		{"deeper than the walk past the limit goes", testutil.NestedMessage(gapHeader, 5+skipExtraDepth+10, textLeaf), Limits{MaxDepth: 5}, []string{"max_depth/executable"}},
		{"text past the part limit", testutil.ManyParts(gapHeader, 6, textLeaf), Limits{MaxParts: 5}, []string{"max_parts/text"}},
		{"executable past the part limit", testutil.ManyParts(gapHeader, 5, exeLeaf), Limits{MaxParts: 5}, []string{"max_parts/executable"}},
		{"text part cut", testutil.NestedMessage(gapHeader, 0, testutil.Leaf{Body: big}), Limits{MaxPartBytes: 1000}, []string{"max_part_bytes/text"}},
		{"message cut", testutil.ManyParts(gapHeader, 0, testutil.Leaf{Type: "image/png", Name: "a.png", Body: big}), Limits{MaxPartBytes: 8000, MaxDecodedBytes: 5000}, []string{"max_decoded_bytes/file"}},
		{"archive too deep", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.NestedZip(4, "a.txt", []byte("x")))), Limits{MaxArchiveDepth: 3}, []string{"max_archive_depth/executable"}},
		{"archive within depth", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.NestedZip(3, "a.txt", []byte("x")))), Limits{MaxArchiveDepth: 3}, nil},
		{"encrypted archive", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.EncryptedZip("a.pdf", []byte("x")))), Limits{}, []string{"archive_encrypted/executable"}},
		{"damaged archive", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.Zip("a.txt", big)[:60])), Limits{}, []string{"archive_unreadable/executable"}},
		{"inner archive past the byte budget", testutil.ManyParts(gapHeader, 1, zipLeaf(makeZip(t, "a.txt", string(big), "inner.zip", string(testutil.Zip("r.bin", noise(4000)))))), Limits{MaxArchiveBytes: 2000}, []string{"max_archive_bytes/executable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseBytes(tc.raw, tc.lim)
			if err != nil {
				t.Fatal(err)
			}
			if got := gapSet(m.Gaps); !slices.Equal(got, tc.want) {
				t.Errorf("got gaps %q, want %q (defects %q)", got, tc.want, m.Defects)
			}
		})
	}
}

func TestGapsAreBounded(t *testing.T) {
	// Every part past the limit is a gap of the same limit and kind: the
	// list holds one.
	m, err := ParseBytes(testutil.ManyParts(gapHeader, 3000, exeLeaf), Limits{MaxParts: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := gapSet(m.Gaps); !slices.Equal(got, []string{"max_parts/executable", "max_parts/text"}) {
		t.Errorf("got gaps %q, want one per kind", got)
	}
	if len(m.Parts) != 10 {
		t.Errorf("got %d parts read, want 10", len(m.Parts))
	}
}

func TestZipHeadsPastBudget(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 3000)
	pe := append([]byte("MZ"), bytes.Repeat([]byte{0}, 3000)...)
	z := makeZip(t, "a.txt", string(big), "b.txt", string(big), "c.pdf", string(pe))
	var gaps []string
	entries := listZip(z, Limits{MaxArchiveEntries: 10, MaxArchiveBytes: 4000, MaxArchiveDepth: 1}, func(string) {}, func(l, e string) { gaps = append(gaps, l+" "+e) })
	if len(entries) != 3 {
		t.Fatalf("got %d entries, want 3", len(entries))
	}
	want := []int{3000, ArchiveHeadBytes, ArchiveHeadBytes}
	for i, e := range entries {
		if len(e.Data) != want[i] {
			t.Errorf("entry %s: got %d bytes read, want %d", e.Name, len(e.Data), want[i])
		}
	}
	if len(gaps) != 0 {
		t.Errorf("got gaps %q, want none: an entry's head is what the checks read", gaps)
	}
}

func TestUnscannablePolicyDecide(t *testing.T) {
	text := []Gap{{Limit: LimitDepth, Kind: GapText}}
	file := []Gap{{Limit: LimitPartBytes, Kind: GapFile}}
	exe := []Gap{{Limit: LimitParts, Kind: GapText}, {Limit: LimitParts, Kind: GapExecutable}}
	for _, tc := range []struct {
		policy string
		gaps   []Gap
		want   UnscannableAction
	}{
		{"", nil, ActRelay},
		{"block", nil, ActRelay},
		{"", text, ActRelay},
		{"", file, ActRelay},
		{"", exe, ActBlock},
		{"accept", exe, ActRelay},
		{"tempfail", text, ActTempfail},
		{"tempfail", exe, ActTempfail},
		{"block", text, ActBlock},
	} {
		p, err := ParseUnscannablePolicy(tc.policy)
		if err != nil {
			t.Fatal(err)
		}
		if p.String() != tc.policy {
			t.Errorf("ParseUnscannablePolicy(%q).String() = %q", tc.policy, p)
		}
		if got := p.Decide(tc.gaps); got != tc.want {
			t.Errorf("policy %q, gaps %v: got %v, want %v", tc.policy, tc.gaps, got, tc.want)
		}
	}
	if _, err := ParseUnscannablePolicy("reject"); err == nil {
		t.Error("ParseUnscannablePolicy(reject): got no error")
	}
}

// TestHostileCasesScanned: the messages that once passed unscanned as
// clean are judged at the default limits.
func TestHostileCasesScanned(t *testing.T) {
	gt := testutil.Leaf{Body: gtube}
	longText := append(bytes.Repeat([]byte("padding text line\r\n"), (10<<20)/19+1), gtube...)
	c := builtinClassifier(t, BuiltinOptions{})
	for _, tc := range []struct {
		name string
		raw  []byte
		want Class
	}{
		{"GTUBE at depth 12", testutil.NestedMessage(gapHeader, 12, gt), Spam},
		{"GTUBE in part 502", testutil.ManyParts(gapHeader, 501, gt), Spam},
		{"GTUBE after 10 MiB of text", testutil.NestedMessage(gapHeader, 0, testutil.Leaf{Body: longText}), Spam},
		{"EICAR in a zip nested 4 deep", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.NestedZip(4, "eicar.com", eicar))), Virus},
		{"invoice.exe as part 502", testutil.ManyParts(gapHeader, 501, exeLeaf), Virus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseBytes(tc.raw, c.Limits())
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Classify(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != tc.want || v.Partial() {
				t.Errorf("got %v with gaps %v, want %v scanned whole", v.Class, v.Gaps, tc.want)
			}
		})
	}
}

// TestClassifyReportsGaps: a clean verdict says what it could not see.
func TestClassifyReportsGaps(t *testing.T) {
	b, err := NewBuiltin(BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	c, err := New(Options{Engines: []EngineSpec{{Engine: b}}, Limits: Limits{MaxDepth: 5}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseBytes(testutil.NestedMessage(gapHeader, 8, testutil.Leaf{Body: gtube}), c.Limits())
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Classify(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if v.Class != Clean || !slices.Equal(PartialLimits(v.Gaps), []string{LimitDepth}) {
		t.Errorf("got %v, partial %v; want clean, partially scanned (max_depth)", v.Class, PartialLimits(v.Gaps))
	}
	if got := promtest.ToFloat64(c.metrics.gaps.WithLabelValues(LimitDepth)); got != 1 {
		t.Errorf("outguard_unscanned_total{limit=max_depth} = %v, want 1", got)
	}
	if n := promtest.CollectAndCount(c.metrics.gaps); n != len(gapLimits) {
		t.Errorf("outguard_unscanned_total has %d series, want one per limit from the start (%d)", n, len(gapLimits))
	}
}

// TestHamHitsNoLimit: no legitimate message of the corpora reaches a
// parsing limit at the defaults.
func TestHamHitsNoLimit(t *testing.T) {
	var files []string
	for _, dir := range []string{"ham", filepath.Join("modern", "ham")} {
		fs, err := filepath.Glob(filepath.Join("..", "testdata", dir, "*.eml"))
		if err != nil || len(fs) == 0 {
			t.Fatalf("no corpus in testdata/%s: %v", dir, err)
		}
		files = append(files, fs...)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseBytes(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Gaps) > 0 {
			t.Errorf("%s: got gaps %v at the default limits", filepath.Base(f), m.Gaps)
		}
	}
}

// TestExternalEnginesPastBuiltinLimits: content past the built-in
// engine's limits is judged by the real rspamd and clamd when they can see
// it, and the verdict keeps the built-in engine's gaps.
func TestExternalEnginesPastBuiltinLimits(t *testing.T) {
	r := realRspamd(t, RspamdOptions{})
	k := realClamd(t, ClamdOptions{})
	b, err := NewBuiltin(BuiltinOptions{Content: ContentOptions{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Engines: []EngineSpec{{Engine: b}, {Engine: r}, {Engine: k}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		raw    []byte
		class  Class
		engine string
		limit  string
	}{
		{"GTUBE at depth 25", testutil.NestedMessage(gapHeader, 25, testutil.Leaf{Body: gtube}), Spam, RspamdName, LimitDepth},
		{"EICAR in a zip nested 10 deep", testutil.ManyParts(gapHeader, 1, zipLeaf(testutil.NestedZip(10, "eicar.com", eicar))), Virus, ClamdName, LimitArchiveDepth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseBytes(tc.raw, c.Limits())
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Classify(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			if v.Class != tc.class || !slices.ContainsFunc(v.Reasons, func(s string) bool { return strings.HasPrefix(s, tc.engine+":") }) {
				t.Errorf("got %v %q, want %v from %s", v.Class, v.Reasons, tc.class, tc.engine)
			}
			if !slices.Equal(PartialLimits(v.Gaps), []string{tc.limit}) {
				t.Errorf("got gaps %v, want the built-in engine's %s", v.Gaps, tc.limit)
			}
		})
	}
}
