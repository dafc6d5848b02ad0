package bdatsync

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// backend counts the messages its sessions accepted; a session without
// wait skips Transfer, as a go-smtp session naively would.
type backend struct {
	wait bool
	mu   sync.Mutex
	got  int
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct {
	b     *backend
	bdat  Transfer
	rcpts int
}

func (s *session) wait() {
	if s.b.wait {
		s.bdat.Wait()
	}
}

func (s *session) Reset()                               { s.wait(); s.rcpts = 0 }
func (s *session) Logout() error                        { s.wait(); return nil }
func (s *session) Mail(string, *smtp.MailOptions) error { s.wait(); return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { s.rcpts++; return nil }
func (s *session) Data(r io.Reader) error {
	_, end := s.bdat.Begin(r)
	defer end()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.rcpts == 0 || len(b) == 0 {
		return fmt.Errorf("bdatsync test: %d recipients, %d octets", s.rcpts, len(b))
	}
	s.b.mu.Lock()
	s.b.got++
	s.b.mu.Unlock()
	return nil
}

// TestResetWaitsForTransfer pipelines a transfer that go-smtp resets (a
// chunk over the size limit) followed at once by a whole new transaction.
// Every second message must be answered with its own result: 250 when
// the server kept it. With Wait the replies and the accepted count agree
// (and -race sees no race on go-smtp's connection).
func TestResetWaitsForTransfer(t *testing.T) {
	be := &backend{wait: true}
	srv := smtp.NewServer(be)
	srv.Domain = "bdatsync.test"
	srv.AllowInsecureAuth = true
	srv.MaxMessageBytes = 64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func() string {
		t.Helper()
		var last string
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			last = l
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimSpace(last)
			}
		}
	}
	reply() // greeting
	fmt.Fprintf(c, "EHLO client.test\r\n")
	reply()

	const rounds = 200
	ok := 0
	for i := 0; i < rounds; i++ {
		var b strings.Builder
		b.WriteString("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
		b.WriteString("BDAT 10\r\n0123456789")
		b.WriteString("BDAT 100\r\n" + strings.Repeat("y", 100))
		b.WriteString("RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n")
		b.WriteString("BDAT 5 LAST\r\nhello")
		io.WriteString(c, b.String())
		want := []string{"250", "250", "250", "552", "250", "250", "250", "250"}
		for j, w := range want {
			got := reply()
			if j == len(want)-1 && strings.HasPrefix(got, "250") {
				ok++
				continue
			}
			if !strings.HasPrefix(got, w) {
				t.Fatalf("round %d, reply %d: %q, want %s", i, j, got, w)
			}
		}
	}
	fmt.Fprintf(c, "QUIT\r\n")
	reply()
	be.mu.Lock()
	defer be.mu.Unlock()
	if ok != rounds || be.got != rounds {
		t.Fatalf("%d messages answered 250 and %d kept, want %d of each", ok, be.got, rounds)
	}
}
