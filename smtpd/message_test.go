package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/outguard/outguard/internal/header"
)

func TestReadMessageSpoolsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	raw := "Subject: x\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 1000)
	m, err := readMessage(iotest.HalfReader(strings.NewReader(raw)), readLimits{maxHeaderBytes: 1024, spoolThreshold: 4096, spoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Spooled() {
		t.Fatalf("message of %d bytes not spooled with a 4096-byte threshold", len(raw))
	}
	if string(m.Header) != "Subject: x\r\n\r\n" {
		t.Errorf("Header = %q", m.Header)
	}
	b, err := m.Bytes()
	if err != nil || string(b) != raw {
		t.Errorf("Bytes() differs from the input (err %v)", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("spool files = %v, want 1", files)
	}
	m.Close()
	if _, err := os.Stat(files[0]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool file still there after Close: %v", err)
	}
	// A refused message leaves no file behind either.
	bad := "Subject: " + strings.Repeat("y", 5000) + "\r\n\r\n"
	if _, err := readMessage(strings.NewReader(bad), readLimits{maxHeaderBytes: 100000, spoolThreshold: 10, spoolDir: dir}); !errors.Is(err, errHeaderLine) {
		t.Errorf("err = %v, want errHeaderLine", err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("spool files left: %v", files)
	}
}

func TestHeaderScanner(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		max     int
		wantEnd int
		wantErr error
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody", 0, 14, nil},
		{"lf", "A: 1\nB: 2\n\nbody", 0, 11, nil},
		{"no body", "A: 1\r\n", 0, -1, nil},
		{"998 ok", "S: " + strings.Repeat("x", 995) + "\r\n\r\n", 0, 1002, nil},
		{"999 too long", "S: " + strings.Repeat("x", 996) + "\r\n\r\n", 0, 0, errHeaderLine},
		{"long body line fine", "A: 1\r\n\r\n" + strings.Repeat("x", 5000), 0, 8, nil},
		{"block too large", strings.Repeat("A: 1\r\n", 100) + "\r\n", 300, 0, errHeaderBlock},
		// The next hop would see the bare CR as a line break and read a
		// field outguard did not.
		{"bare CR hides a field", "Subject: a\rX-AuthUser: b\r\n\r\nbody", 0, 0, errHeaderCR},
		{"bare CR at a line's end", "Subject: a\r\rX: b\r\n\r\n", 0, 0, errHeaderCR},
		{"bare CR in the body is fine", "A: 1\r\n\r\nx\ry", 0, 8, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := headerScanner{max: tc.max}
			var err error
			for i := 0; i < len(tc.in) && err == nil; i += 7 { // odd chunking
				err = h.scan([]byte(tc.in[i:min(len(tc.in), i+7)]))
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			end := int(h.end)
			if !h.done {
				end = -1
			}
			if end != tc.wantEnd {
				t.Errorf("end = %d, want %d", end, tc.wantEnd)
			}
		})
	}
}

func TestRewriteHeader(t *testing.T) {
	in := "X-AuthUser: a\r\n b\r\nSubject: s\r\nx-authuser: again\r\nTo: t\r\n\r\n"
	got := string(rewriteHeader([]byte(in), []string{"X-Trace: 1"}, []string{"X-AuthUser"}))
	want := "X-Trace: 1\r\nSubject: s\r\nTo: t\r\n\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzHeaderScanner(f *testing.F) {
	f.Add([]byte("A: 1\r\n\r\nbody"), 5)
	f.Add([]byte("A: 1\n \n\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk < 1 {
			chunk = 1
		}
		var whole, parts headerScanner
		e1 := whole.scan(b)
		var e2 error
		for i := 0; i < len(b) && e2 == nil; i += chunk {
			e2 = parts.scan(b[i:min(len(b), i+chunk)])
		}
		if !errors.Is(e1, e2) && !errors.Is(e2, e1) {
			t.Fatalf("whole: %v, chunked: %v", e1, e2)
		}
		if e1 == nil && (whole.done != parts.done || whole.end != parts.end) {
			t.Fatalf("whole end %v/%d, chunked %v/%d", whole.done, whole.end, parts.done, parts.end)
		}
	})
}

// FuzzRewriteHeader checks that stripping fields never leaves a field of
// that name behind nor touches the body.
func FuzzRewriteHeader(f *testing.F) {
	f.Add([]byte("X-AuthUser: a\r\n b\r\nSubject: s\r\n\r\n"), "X-AuthUser")
	f.Add([]byte("x-authuser:\r\n\r\n"), "X-AuthUser")
	f.Fuzz(func(t *testing.T, block []byte, name string) {
		if name == "" || strings.ContainsAny(name, ": \t\r\n") {
			return
		}
		out := rewriteHeader(block, nil, []string{name})
		for _, f := range header.Fields(out) {
			if f.Is(name) {
				t.Fatalf("field %q left in %q", name, out)
			}
		}
		if len(out) > len(block) {
			t.Fatalf("stripping grew the header")
		}
	})
}

// FuzzLineScanner checks the data line limit against a plain count, with
// the message arriving in chunks of any size.
func FuzzLineScanner(f *testing.F) {
	f.Add([]byte("aaaa\r\nbb\rccccc\n"), 4, 2)
	f.Fuzz(func(t *testing.T, b []byte, max, chunk int) {
		if max < 1 || max > 64 || chunk < 1 {
			return
		}
		want := false
		for _, l := range bytes.FieldsFunc(b, func(r rune) bool { return r == '\r' || r == '\n' }) {
			want = want || len(l) > max
		}
		s := lineScanner{max: max}
		var err error
		for i := 0; i < len(b) && err == nil; i += chunk {
			err = s.scan(b[i:min(len(b), i+chunk)])
		}
		if got := errors.Is(err, errDataLine); got != want {
			t.Fatalf("scan(%q, max %d) = %v, want a refusal: %v", b, max, err, want)
		}
	})
}

// TestReaderAfterClose: a reader handed out before Close (as a scanner past
// its timeout holds one) must not read the storage once it went back to
// the pool, where the next message is written into it.
func TestReaderAfterClose(t *testing.T) {
	raw := "Subject: first\r\n\r\nthe first message\r\n"
	m, err := readMessage(strings.NewReader(raw), readLimits{maxHeaderBytes: 1024, spoolThreshold: 1 << 20, spoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ra, r := m.ReaderAt(), m.Reader()
	m.Close()
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Take the pooled buffers, as the next transactions would.
	for range 4 {
		n, err := readMessage(strings.NewReader("Subject: other\r\n\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n"), readLimits{maxHeaderBytes: 1024, spoolThreshold: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
	}
	buf := make([]byte, len(raw))
	if n, err := ra.ReadAt(buf, 0); !errors.Is(err, ErrMessageClosed) {
		t.Errorf("ReadAt after Close: got %d bytes %q, err %v; want ErrMessageClosed", n, buf[:n], err)
	}
	if b, err := io.ReadAll(r); !errors.Is(err, ErrMessageClosed) {
		t.Errorf("Reader after Close: got %q, err %v; want ErrMessageClosed", b, err)
	}
	if _, err := m.Bytes(); !errors.Is(err, ErrMessageClosed) {
		t.Errorf("Bytes after Close: err %v, want ErrMessageClosed", err)
	}
}

// TestReaderConcurrentWithClose reads while the message is closed and its
// storage reused; run with -race.
func TestReaderConcurrentWithClose(t *testing.T) {
	for i := range 50 {
		raw := fmt.Sprintf("Subject: m%d\r\n\r\n%s\r\n", i, strings.Repeat("a", 4000))
		m, err := readMessage(strings.NewReader(raw), readLimits{maxHeaderBytes: 1024, spoolThreshold: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		r := m.Reader()
		done := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(r)
			done <- b
		}()
		m.Close()
		n, err := readMessage(strings.NewReader("Subject: z\r\n\r\n"+strings.Repeat("Z", 4100)), readLimits{maxHeaderBytes: 8192, spoolThreshold: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if b := <-done; !strings.HasPrefix(raw, string(b)) {
			t.Fatalf("a reader of message %d read bytes of another message: %.40q", i, b)
		}
		n.Close()
	}
}
