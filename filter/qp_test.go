package filter

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readUntilError reads r with reads of the given sizes in turn (the way
// the walker and io.Copy read a part) and returns what it read up to the
// first error, and that error.
func readUntilError(r io.Reader, sizes []byte) ([]byte, string) {
	var out []byte
	for i := 0; ; i++ {
		n := 1 + int(sizes[i%len(sizes)])
		buf := make([]byte, n)
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err != nil {
			return out, err.Error()
		}
		if i > 1<<20 {
			return out, "no progress"
		}
	}
}

var qpCases = []string{
	"", "a", "a=\r\nb", "a=\nb", "a= \t\r\nb", "a=", "=", "==", "a==", "=4", "=41", "=4G", "=G4", "=\rx\n", "=A\n",
	"x=\x01\r\n", "caf=C3=A9\r\n", "tab\there \t \r\nnext", "a\x7fb", "a\x00b", "\xff\xfe=3d\n", "a=\r\n\r\n=\r\n",
	"=3D=3d=3", "a =\r\n b", "trailing   \n", "x=\r\ny=\n", "a=  x\r\n", "=\r\n=\r\n", "\r\n\r\n", "\n",
	strings.Repeat("a", 5000) + "\r\nb", strings.Repeat("=41", 2000) + "\n", strings.Repeat("b", 4095) + "=\r\nc",
	strings.Repeat("c", 4094) + "=\r\nd", strings.Repeat("d", 4096) + "\n",
}

func TestQPReaderMatchesStdlib(t *testing.T) {
	for _, c := range qpCases {
		for _, sizes := range [][]byte{{0}, {6}, {255}, {3, 0, 17}} {
			want, wantErr := readUntilError(quotedprintable.NewReader(strings.NewReader(c)), sizes)
			got, gotErr := readUntilError(newQPReader(strings.NewReader(c)), sizes)
			if !bytes.Equal(got, want) || gotErr != wantErr {
				t.Errorf("%q, reads %v: %q, %s; want %q, %s", c, sizes, got, gotErr, want, wantErr)
			}
		}
	}
}

// FuzzQPReader holds the bulk decoder to mime/quotedprintable's, for any
// input, read sizes and underlying segmentation.
func FuzzQPReader(f *testing.F) {
	for _, c := range qpCases {
		f.Add([]byte(c), []byte{7}, false)
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, oneByte bool) {
		if len(sizes) == 0 {
			sizes = []byte{255}
		}
		src := func() io.Reader {
			if oneByte {
				return iotest.OneByteReader(bytes.NewReader(in))
			}
			return bytes.NewReader(in)
		}
		want, wantErr := readUntilError(quotedprintable.NewReader(src()), sizes)
		got, gotErr := readUntilError(newQPReader(src()), sizes)
		if !bytes.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("%q, reads %v: %q, %s; want %q, %s", in, sizes, got, gotErr, want, wantErr)
		}
	})
}

// TestQuotedPrintablePartsAsStdlib walks a message whose quoted-printable
// parts hold what trips mime/quotedprintable (a line past bufio's buffer,
// a control byte, a bad escape) and checks each part's data and defect
// against that decoder run on the part's body; a part converted from
// another charset keeps going through go-message's decoders.
func TestQuotedPrintablePartsAsStdlib(t *testing.T) {
	bodies := []string{
		strings.Repeat("a", 5000) + "\r\nnext line",
		"bad \x01 byte\r\nafter",
		"caf=C3=A9 =3D soft=\r\nbreak =\r\n end  \r\nlast=",
		"=4G lenient =\rx",
		"tab\there \t \r\n\r\n=41=42=43",
	}
	var parts []att
	for _, b := range bodies {
		parts = append(parts, att{body: []byte(b), encoding: "quoted-printable"})
	}
	parts = append(parts,
		att{ctype: "application/octet-stream", name: "x.bin", body: []byte("=00=FF=\r\nz"), encoding: "quoted-printable"},
		att{ctype: "text/plain; charset=iso-8859-1", body: []byte("caf=E9"), encoding: "quoted-printable"})
	m := mustParse(t, buildMessage(stdHeaders, parts...))
	if len(m.Parts) != len(parts) {
		t.Fatalf("got %d parts, want %d", len(m.Parts), len(parts))
	}
	for i, a := range parts[:len(parts)-1] {
		want, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(a.body)))
		p := m.Parts[i]
		if !bytes.Equal(p.Data, want) {
			t.Errorf("part %d: got %q, want %q", i+1, p.Data, want)
		}
		defect := ""
		if err != nil {
			defect = fmt.Sprintf("part %d: %v", i+1, err)
		}
		if got := slices.Contains(m.Defects, defect); defect != "" && !got {
			t.Errorf("part %d: defects %q, want %q among them", i+1, m.Defects, defect)
		}
	}
	if got := string(m.Parts[len(parts)-1].Data); got != "café" {
		t.Errorf("iso-8859-1 part: got %q, want %q", got, "café")
	}
	if len(m.Defects) != 3 {
		t.Errorf("defects %q, want the three of the parts above", m.Defects)
	}
}
