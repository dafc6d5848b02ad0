package dotreader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// stack builds what go-smtp reads a transfer through: the line length
// limit, a 4 KiB bufio.Reader, then the DATA reader made by mk.
func stack(stream []byte, segs []int, lineLimit int, mk func(*bufio.Reader) io.Reader) (io.Reader, *bufio.Reader) {
	br := bufio.NewReaderSize(&lineLimiter{r: &segments{data: stream, sizes: segs}, limit: lineLimit}, 4096)
	return mk(br), br
}

// checkSame reads stream with Reader and with byteReader, using the same
// sequence of read sizes, and fails on the first Read whose result
// differs, or when they leave different bytes in the bufio.Reader.
func checkSame(t *testing.T, stream []byte, segs, reads []int, maxBytes int64, lineLimit int) {
	t.Helper()
	bulk, bb := stack(stream, segs, lineLimit, func(r *bufio.Reader) io.Reader { return New(r, maxBytes) })
	ref, rb := stack(stream, segs, lineLimit, func(r *bufio.Reader) io.Reader { return newByteReader(r, maxBytes) })
	if len(reads) == 0 {
		reads = []int{32 << 10}
	}
	for i := 0; i < 1<<20; i++ {
		size := reads[i%len(reads)]
		p, q := make([]byte, size), make([]byte, size)
		n, err := bulk.Read(p)
		m, err2 := ref.Read(q)
		if n != m || !bytes.Equal(p[:n], q[:m]) || !errors.Is(err, err2) || (err == nil) != (err2 == nil) {
			t.Fatalf("read %d (size %d): bulk %d %q %v, byte-wise %d %q %v", i, size, n, p[:n], err, m, q[:m], err2)
		}
		if err != nil {
			break
		}
	}
	restB, errB := io.ReadAll(bb)
	restR, errR := io.ReadAll(rb)
	if !bytes.Equal(restB, restR) || !errors.Is(errB, errR) || (errB == nil) != (errR == nil) {
		t.Fatalf("left behind: bulk %q %v, byte-wise %q %v", restB, errB, restR, errR)
	}
}

// edgeStreams are transfers on the edges of the end-of-data rule.
var edgeStreams = []string{
	".\r\n",
	"a\r\n.\r\n",
	"..\r\n.\r\n",
	".x\r\n.\r\n",
	"a\n.\r\n.\r\n",               // a bare LF starts no line
	"a\r\r\n.\r\n.\r\n",           // CR CR LF ends no line
	".\rX\r\n.\r\n",               // ". CR" then not LF: both dropped
	".\r\r\n.\r\n",                // ". CR CR LF"
	"a\r\n.\r\nMAIL FROM:<x>\r\n", // the next command stays unread
	"a\r\n..\r\n...\r\n.\r\n",
	"no end",
	"no end\r\n.",
	"no end\r\n.\r",
	"",
	"\r\n\r\n.\r\n",
	"line\r\n.",
	strings.Repeat("x", 5000) + "\r\n.\r\n",
	strings.Repeat("a\r\n.b\r\n", 700) + ".\r\n",
}

func TestReaderEdgeCases(t *testing.T) {
	for _, s := range edgeStreams {
		for _, segs := range [][]int{nil, {1}, {3, 1, 7}} {
			for _, reads := range [][]int{nil, {1}, {2, 5, 1}, {4096}} {
				for _, limit := range []int64{0, 1, 3, 100, 4096} {
					for _, line := range []int{0, 10, 1000} {
						t.Run("", func(t *testing.T) { checkSame(t, []byte(s), segs, reads, limit, line) })
					}
				}
			}
		}
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range edgeStreams {
		f.Add([]byte(s), []byte{3, 1}, []byte{2, 9}, uint16(0), uint16(0))
	}
	f.Add([]byte("a\r\n.\r\n"), []byte{}, []byte{1}, uint16(2), uint16(3))
	f.Fuzz(func(t *testing.T, stream, segs, reads []byte, limit, line uint16) {
		toInts := func(b []byte) []int {
			var out []int
			for _, x := range b {
				out = append(out, int(x)+1)
			}
			return out
		}
		checkSame(t, stream, toInts(segs), toInts(reads), int64(limit), int(line))
	})
}

// captureBackend keeps what a go-smtp server's Data read.
type captureBackend struct {
	mu   sync.Mutex
	data []byte
	err  error
	done chan struct{}
}

func (b *captureBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &captureSession{b}, nil }

type captureSession struct{ b *captureBackend }

func (s *captureSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *captureSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *captureSession) Reset()                               {}
func (s *captureSession) Logout() error                        { return nil }
func (s *captureSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.data, s.b.err = data, err
	s.b.mu.Unlock()
	close(s.b.done)
	return err
}

// goSMTPRead sends body after DATA to a running go-smtp server with the
// given limits, closes the sending side, and returns what Data read.
func goSMTPRead(t *testing.T, body []byte, maxBytes int64, lineLimit int) ([]byte, error) {
	t.Helper()
	be := &captureBackend{done: make(chan struct{})}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.MaxMessageBytes = maxBytes
	srv.MaxLineLength = lineLimit
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", code, err)
			}
			if !strings.HasPrefix(l, code) {
				t.Fatalf("got %q, want %s", l, code)
			}
			if len(l) < 4 || l[3] == ' ' {
				return
			}
		}
	}
	expect("220")
	for _, cmd := range []struct{ line, code string }{
		{"EHLO x", "250"}, {"MAIL FROM:<a@example.com>", "250"}, {"RCPT TO:<b@example.com>", "250"}, {"DATA", "354"},
	} {
		fmt.Fprintf(c, "%s\r\n", cmd.line)
		expect(cmd.code)
	}
	c.Write(body)
	c.(*net.TCPConn).CloseWrite()
	select {
	case <-be.done:
	case <-time.After(10 * time.Second):
		t.Fatal("go-smtp's Data did not return")
	}
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.data, be.err
}

// TestByteReaderIsGoSMTP checks the reference against go-smtp itself: a
// running server's Data reads what byteReader reads, with the same
// error, for the edge cases and two real messages.
func TestByteReaderIsGoSMTP(t *testing.T) {
	streams := append([]string(nil), edgeStreams...)
	for _, m := range benchMessages(t) {
		streams = append(streams, string(m.stream))
	}
	for _, s := range streams {
		for _, lim := range []struct {
			max  int64
			line int
		}{{0, 0}, {3, 0}, {100, 0}, {0, 1000}, {0, 40}} {
			got, gotErr := goSMTPRead(t, []byte(s), lim.max, lim.line)
			want, wantErr := io.ReadAll(newByteReader(bufio.NewReader(&lineLimiter{r: strings.NewReader(s), limit: lim.line}), lim.max))
			if lim.line > 0 && errors.Is(wantErr, smtp.ErrTooLongLine) {
				// Past the line limit, how much arrives first depends on how
				// the connection cut the input into reads.
				if !errors.Is(gotErr, smtp.ErrTooLongLine) {
					t.Errorf("%.40q line limit %d: go-smtp %v, reference %v", s, lim.line, gotErr, wantErr)
				}
				continue
			}
			if !bytes.Equal(got, want) || !errors.Is(gotErr, wantErr) && gotErr != wantErr {
				t.Errorf("%.40q limits %+v: go-smtp read %d bytes, %v; the reference %d bytes, %v", s, lim, len(got), gotErr, len(want), wantErr)
			}
		}
	}
}

type benchMessage struct {
	name   string
	stream []byte // dot-stuffed, with the end of data
}

// benchMessages are a real 5 KB newsletter of testdata/modern and the
// same grown to 50 KB, dot-stuffed as a client sends them.
func benchMessages(tb testing.TB) []benchMessage {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "modern", "ham", "a-061-outdoor-shop-spring-sale.eml"))
	if err != nil {
		tb.Fatal(err)
	}
	raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	big := bytes.Repeat(raw, 50<<10/len(raw))
	var out []benchMessage
	for _, m := range []struct {
		name string
		msg  []byte
	}{{"5KB", raw}, {"50KB", big}} {
		stuffed := bytes.ReplaceAll(m.msg, []byte("\r\n."), []byte("\r\n.."))
		if bytes.HasPrefix(stuffed, []byte(".")) {
			stuffed = append([]byte("."), stuffed...)
		}
		out = append(out, benchMessage{m.name, append(stuffed, ".\r\n"...)})
	}
	return out
}

// BenchmarkDataReader compares go-smtp's byte-at-a-time DATA reader (its
// behaviour, byteReader) with the bulk Reader, reading a whole transfer
// through a 4 KiB bufio.Reader into a 32 KiB buffer as io.Copy does.
func BenchmarkDataReader(b *testing.B) {
	for _, m := range benchMessages(b) {
		for _, impl := range []struct {
			name string
			mk   func(*bufio.Reader) io.Reader
		}{
			{"gosmtp-bytewise", func(r *bufio.Reader) io.Reader { return newByteReader(r, 0) }},
			{"bulk", func(r *bufio.Reader) io.Reader { return New(r, 0) }},
		} {
			b.Run(impl.name+"/"+m.name, func(b *testing.B) {
				src := bytes.NewReader(m.stream)
				br := bufio.NewReaderSize(src, 4096)
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(m.stream)))
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(m.stream)
					br.Reset(src)
					r := impl.mk(br)
					for {
						_, err := r.Read(buf)
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
