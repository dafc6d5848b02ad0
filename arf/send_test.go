package arf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// relay is a real go-smtp server on 127.0.0.1:0 that records what it gets.
type relay struct {
	mu     sync.Mutex
	from   []string
	rcpt   []string
	data   [][]byte
	reject bool
}

type relaySession struct{ r *relay }

func (s *relaySession) Reset()        {}
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.from = append(s.r.from, from)
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.r.reject {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.rcpt = append(s.r.rcpt, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.data = append(s.r.data, b)
	return err
}

func startRelay(t *testing.T, r *relay) string {
	t.Helper()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func TestSMTPSender(t *testing.T) {
	r := &relay{}
	addr := startRelay(t, r)
	raw, err := testGenerator(t, 0).Generate(testIncident("spam", asciiOriginal))
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPSender{Address: addr, Helo: "mta.out.example.net", TLS: "starttls_optional"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, "", []string{"abuse@out.example.net"}, raw); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.from) != 1 || r.from[0] != "" {
		t.Errorf("MAIL FROM: got %q, want the null sender", r.from)
	}
	if len(r.rcpt) != 1 || r.rcpt[0] != "abuse@out.example.net" {
		t.Errorf("RCPT TO: got %q", r.rcpt)
	}
	if len(r.data) != 1 || !bytes.Equal(r.data[0], raw) {
		t.Errorf("DATA: relay got a different message")
	}
}

func TestSMTPSenderErrors(t *testing.T) {
	r := &relay{reject: true}
	addr := startRelay(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := (&SMTPSender{Address: addr}).Send(ctx, "", []string{"nobody@out.example.net"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if !isPermanent(err) {
		t.Errorf("5xx at RCPT: got %v, want a permanent error", err)
	}
	err = (&SMTPSender{Address: addr, TLS: "starttls"}).Send(ctx, "", []string{"a@b.example"}, []byte("x\r\n"))
	if err == nil {
		t.Errorf("required STARTTLS not offered: got no error")
	}
	// A relay that is down is a temporary failure.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	err = (&SMTPSender{Address: down}).Send(ctx, "", []string{"a@b.example"}, []byte("x\r\n"))
	if err == nil || isPermanent(err) {
		t.Errorf("relay down: got %v, want a temporary error", err)
	}
	if !isPermanent(errors.Join(ErrPermanent)) {
		t.Errorf("ErrPermanent not permanent")
	}
}
