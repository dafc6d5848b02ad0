package header

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestFields(t *testing.T) {
	in := " orphan\r\nFrom : a@b\r\n c\r\nno colon\r\nBad Name: x\r\nX\vY: z\r\n:empty\r\nSubject:s\n\tt\nLast: l\r\n\r\nBody: not a field\r\n"
	var got []string
	for _, f := range Fields([]byte(in)) {
		got = append(got, string(f.Name)+"|"+string(f.Value())+"|"+string(f.Raw))
	}
	want := []string{
		"|| orphan\r\n",
		"From| a@b\r\n c|From : a@b\r\n c\r\n",
		"||no colon\r\n",
		"||Bad Name: x\r\n",
		"||X\vY: z\r\n",
		"||:empty\r\n",
		"Subject|s\n\tt|Subject:s\n\tt\n",
		"Last| l|Last: l\r\n",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	fs := Fields([]byte(in))
	if !fs[0].Orphan() || fs[2].Orphan() {
		t.Fatal("Orphan wrong")
	}
	if l := fs[1].Lines(); len(l) != 2 || string(l[0]) != "From : a@b" || string(l[1]) != " c" || fs[1].Colon() != 5 {
		t.Fatalf("Lines %q colon %d", l, fs[1].Colon())
	}
}

func TestRemove(t *testing.T) {
	for _, tc := range []struct{ in, name, want string }{
		{"A: 1\r\nX-Id: 2\r\n 3\r\nB: 4\r\n\r\nX-Id: body\r\n", "x-id", "A: 1\r\nB: 4\r\n\r\nX-Id: body\r\n"},
		{"X-Id : 1\nA: 2\n", "X-Id", "A: 2\n"},
		// Not fields (RFC 5322 section 3.6.8): kept, and no reader reads them.
		{"X-Id\v: 1\r\nX Id: 2\r\n", "X-Id", "X-Id\v: 1\r\nX Id: 2\r\n"},
		{" X-Id: orphan\r\nX-Id: 1", "X-Id", " X-Id: orphan\r\n"},
		{"X-Id: 1\r", "X-Id", ""},
	} {
		if got := string(Remove([]byte(tc.in), tc.name)); got != tc.want {
			t.Errorf("Remove(%q, %q) = %q, want %q", tc.in, tc.name, got, tc.want)
		}
	}
}

// refName is RFC 5322's field name followed by the obsolete white space
// before the colon, written independently of the scanner.
var refName = regexp.MustCompile(`^([\x21-\x39\x3b-\x7e]+)[ \t]*:`)

// refRead is a reference reader: the raw text of every field named name,
// found line by line.
func refRead(block []byte, name string) (fields [][]byte, kept []byte) {
	lines := bytes.SplitAfter(block, []byte("\n"))
	inField := false
	for i, l := range lines {
		bare := bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		if len(bare) == 0 {
			kept = append(kept, bytes.Join(lines[i:], nil)...)
			return fields, kept
		}
		if bare[0] == ' ' || bare[0] == '\t' {
			if inField {
				fields[len(fields)-1] = append(fields[len(fields)-1], l...)
			} else {
				kept = append(kept, l...)
			}
			continue
		}
		m := refName.FindSubmatch(bare)
		inField = m != nil && strings.EqualFold(string(m[1]), name)
		if inField {
			fields = append(fields, append([]byte(nil), l...))
		} else {
			kept = append(kept, l...)
		}
	}
	return fields, kept
}

// FuzzRemove is the differential test of stripping against reading: what
// Remove takes out of a block is exactly the fields a reader reads under
// that name, a reader finds none of them afterwards, and every other byte
// stays.
func FuzzRemove(f *testing.F) {
	for _, s := range []string{
		"X-Id: a\r\n b\r\nSubject: s\r\n\r\nX-Id: body",
		"x-id :\r\n\r\n", "X-Id\v: 1\r\n", " X-Id: 1\r\nX-Id: 2\r", "\r\nX-Id: 1", "X-Id: 1\rX-Id: 2\n",
	} {
		f.Add([]byte(s), "X-Id")
	}
	f.Fuzz(func(t *testing.T, block []byte, name string) {
		if !ValidName([]byte(name)) {
			return
		}
		out := Remove(block, name)
		wantFields, wantKept := refRead(block, name)
		if !bytes.Equal(out, wantKept) {
			t.Fatalf("Remove(%q, %q) = %q, reference keeps %q", block, name, out, wantKept)
		}
		var read [][]byte
		for _, f := range Fields(block) {
			if f.Is(name) {
				read = append(read, f.Raw)
			}
		}
		if len(read) != len(wantFields) {
			t.Fatalf("scanner read %q, reference %q", read, wantFields)
		}
		for i := range read {
			if !bytes.Equal(read[i], wantFields[i]) {
				t.Fatalf("scanner read %q, reference %q", read, wantFields)
			}
		}
		if len(out)+len(bytes.Join(read, nil)) != len(block) {
			t.Fatalf("removed %d bytes, the fields read hold %d", len(block)-len(out), len(bytes.Join(read, nil)))
		}
		for _, f := range Fields(out) {
			if f.Is(name) {
				t.Fatalf("field %q left in %q", f.Raw, out)
			}
		}
	})
}
