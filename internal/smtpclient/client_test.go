package smtpclient

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriteDotStuffed(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"no final newline", "a\r\nb", "a\r\nb\r\n.\r\n"},
		{"bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"leading dot", ".hidden\r\n..two\r\n", "..hidden\r\n...two\r\n.\r\n"},
		{"smuggling LF dot LF", "x\n.\nMAIL FROM:<e@x>\r\n", "x\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n"},
		{"bare CR dot bare CR", "x\r.\ry\r\n", "x\r\n..\r\ny\r\n.\r\n"},
		{"bare CR dot CRLF", "x\r.\r\nMAIL FROM:<e@x>\r\n", "x\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n"},
		{"CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
		{"bare CR at the end", "a\r", "a\r\n.\r\n"},
		{"CRLF split across reads", "a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"},
		{"empty", "", ".\r\n"},
		{"dot at start of message", ".\r\n", "..\r\n.\r\n"},
	}
	for _, tc := range cases {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				var out bytes.Buffer
				w := bufio.NewWriter(&out)
				r := strings.NewReader(tc.in)
				var err error
				if oneByte {
					err = writeDotStuffed(w, iotest.OneByteReader(r))
				} else {
					err = writeDotStuffed(w, r)
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := out.String(); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
	}
}

// FuzzReplyError feeds next-hop reply texts to the parser that turns them
// into the replies passed back to clients.
func FuzzReplyError(f *testing.F) {
	f.Add(550, "5.1.1 No such user\n5.1.1 really")
	f.Add(451, "4.4.1")
	f.Add(250, "9.9.9 odd")
	f.Add(421, "")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		e := ReplyError(code, msg)
		if e.Code != code {
			t.Fatalf("code %d became %d", code, e.Code)
		}
		if ec := e.EnhancedCode; ec != [3]int{-1, -1, -1} && (ec[0] < 2 || ec[0] > 5) {
			t.Fatalf("enhanced code %v out of range from %q", ec, msg)
		}
	})
}

// FuzzWriteDotStuffed checks what reaches the next hop, whatever the
// client sent: CRLF line endings only, the only end-of-data sequence the
// final one, and the content back (line endings normalised) once a
// receiver removes the stuffing. Reads come in chunks of any size.
func FuzzWriteDotStuffed(f *testing.F) {
	for _, s := range []string{"x\r.\ry", "x\n.\ny", "a\r\r\n.\r\n", ".", "\r", "\r\n.\r\n", ".\r.\n."} {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk int) {
		if chunk < 1 {
			chunk = 1
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeDotStuffed(w, iotest.HalfReader(&chunkReader{b: in, n: chunk})); err != nil {
			t.Fatal(err)
		}
		o := out.Bytes()
		for i, c := range o {
			if c == '\r' && (i+1 == len(o) || o[i+1] != '\n') || c == '\n' && (i == 0 || o[i-1] != '\r') {
				t.Fatalf("bare line break at %d in %q", i, o)
			}
		}
		end := bytes.Index(append([]byte("\r\n"), o...), []byte("\r\n.\r\n"))
		if end != len(o)-3 {
			t.Fatalf("end of data at %d in %q (length %d)", end, o, len(o))
		}
		// A receiver drops the terminator and one leading dot per line.
		var got []byte
		lines := bytes.SplitAfter(o[:len(o)-3], []byte("\r\n"))
		for _, l := range lines {
			got = append(got, bytes.TrimPrefix(l, []byte("."))...)
		}
		want := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\n"), []byte("\r\n"))
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(want, "\r\n"...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("unstuffed %q, want %q", got, want)
		}
	})
}

// chunkReader returns b in reads of at most n octets.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}
