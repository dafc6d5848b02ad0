// Command flood plays the hostile clients of bench/flood.sh against an
// SMTP server and prints what they got, as JSON:
//
//	flood auth --addr A --user U --password P [-n 200] [--other-from 127.0.0.2]
//	flood rcpt --addr A --to FEEDBACK-ADDRESS [-n 120000]
//
// auth opens n connections from 127.0.0.1 at once, each trying AUTH PLAIN
// with a wrong password for user U, while another client (from
// --other-from) authenticates with the right one and relays a message;
// then it times sequential wrong passwords for U and for unknown users.
// rcpt opens one unauthenticated session, sends MAIL and n pipelined
// RCPTs (all but the first to addresses the server must refuse), then
// DATA with a small message if the server still listens, and counts the
// replies until the server closes the connection.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: flood auth|rcpt [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:2525", "server host:port")
	user := fs.String("user", "trial", "AUTH user name (auth)")
	password := fs.String("password", "trial-password", "the user's right password (auth)")
	n := fs.Int("n", 0, "parallel AUTHs (auth, default 200) or RCPTs (rcpt, default 120000)")
	other := fs.String("other-from", "127.0.0.2", "loopback address of the other client (auth)")
	to := fs.String("to", "fbl@outguard.localhost", "an address the server accepts (rcpt)")
	pad := fs.Int("pad", 0, "length of the refused recipients' local parts (rcpt; 0: short)")
	data := fs.Bool("data", true, "end the RCPTs with DATA and a small message, so that the transaction is recorded (rcpt)")
	fs.Parse(os.Args[2:])
	var out any
	switch os.Args[1] {
	case "auth":
		if *n == 0 {
			*n = 200
		}
		out = authFlood(*addr, *user, *password, *other, *n)
	case "rcpt":
		if *n == 0 {
			*n = 120000
		}
		out = rcptFlood(*addr, *to, *n, *pad, *data)
	default:
		fmt.Fprintln(os.Stderr, "usage: flood auth|rcpt [flags]")
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

type session struct {
	c  net.Conn
	tc *textproto.Conn
}

func dial(addr, local string) (*session, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	s := &session{c: c, tc: textproto.NewConn(c)}
	if _, _, err := s.tc.ReadResponse(220); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := s.cmd("EHLO flood.test"); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// cmd sends line and returns the reply's code as text ("535"), or the
// error when there was no reply.
func (s *session) cmd(line string) (string, error) {
	if _, err := s.tc.Cmd("%s", line); err != nil {
		return "", err
	}
	code, _, err := s.tc.ReadResponse(0)
	if code == 0 {
		return "", err
	}
	return fmt.Sprint(code), nil
}

func plain(user, pass string) string {
	return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

type authResult struct {
	Parallel      int            `json:"parallel"`
	Replies       map[string]int `json:"replies"`
	Seconds       float64        `json:"seconds"`
	OtherResult   string         `json:"other_client"`
	OtherSeconds  float64        `json:"other_client_seconds"`
	WrongMillis   float64        `json:"wrong_password_ms_median"`
	UnknownMillis float64        `json:"unknown_user_ms_median"`
}

func authFlood(addr, user, password, other string, n int) authResult {
	res := authResult{Parallel: n, Replies: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := "connect failed"
			if s, err := dial(addr, "127.0.0.1"); err == nil {
				if c, err := s.cmd(plain(user, "wrong-"+password)); err == nil {
					code = c
				} else {
					code = "closed"
				}
				s.c.Close()
			}
			mu.Lock()
			res.Replies[code]++
			mu.Unlock()
		}()
	}
	// The other client starts once the flood is under way.
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	res.OtherResult = relayOnce(addr, other, user, password)
	res.OtherSeconds = time.Since(t0).Seconds()
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()

	// Timing of refusals, one at a time, from a third address (the first
	// is throttled by now).
	res.WrongMillis = medianAuth(addr, "127.0.0.3", user, "wrong-"+password)
	res.UnknownMillis = medianAuth(addr, "127.0.0.4", "no-such-user", "wrong-"+password)
	return res
}

// relayOnce authenticates from local and relays one message; it returns
// "250" or what went wrong.
func relayOnce(addr, local, user, password string) string {
	s, err := dial(addr, local)
	if err != nil {
		return "connect: " + err.Error()
	}
	defer s.c.Close()
	for _, step := range []struct{ line, want string }{
		{plain(user, password), "235"},
		{"MAIL FROM:<bench@out.example.net>", "250"},
		{"RCPT TO:<rcpt@example.org>", "250"},
		{"DATA", "354"},
		{"Subject: flood bench\r\n\r\nhello\r\n.", "250"},
	} {
		got, err := s.cmd(step.line)
		if err != nil {
			return fmt.Sprintf("%s: %v", strings.Fields(step.line)[0], err)
		}
		if got != step.want {
			return fmt.Sprintf("%s: %s", strings.Fields(step.line)[0], got)
		}
	}
	return "250"
}

// medianAuth times 3 wrong AUTHs (each on its own connection, so the
// throttle's limit of failures is not reached) and returns the median.
func medianAuth(addr, local, user, pass string) float64 {
	var ms []float64
	for range 3 {
		s, err := dial(addr, local)
		if err != nil {
			return -1
		}
		t0 := time.Now()
		s.cmd(plain(user, pass))
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		s.c.Close()
	}
	sort.Float64s(ms)
	return ms[len(ms)/2]
}

type rcptResult struct {
	Sent    int            `json:"rcpts_sent"`
	Replies map[string]int `json:"replies"`
	Seconds float64        `json:"seconds"`
	Closed  bool           `json:"closed_by_server"`
}

func rcptFlood(addr, to string, n, pad int, data bool) rcptResult {
	res := rcptResult{Replies: map[string]int{}}
	s, err := dial(addr, "")
	if err != nil {
		res.Replies["connect: "+err.Error()]++
		return res
	}
	defer s.c.Close()
	start := time.Now()
	if code, err := s.cmd("MAIL FROM:<fbl@provider.example>"); err != nil || code != "250" {
		res.Replies["MAIL "+code]++
		return res
	}
	// Replies are read as they come while RCPTs are written: pipelining
	// (RFC 2920) without waiting.
	done := make(chan struct{})
	go354 := make(chan bool, 1)
	go func() {
		defer close(done)
		defer close(go354)
		r := bufio.NewReader(s.c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				res.Closed = true
				return
			}
			if len(line) >= 4 && line[3] == ' ' {
				res.Replies[line[:3]]++
				if line[:3] == "354" {
					go354 <- true
				}
			}
		}
	}()
	w := bufio.NewWriterSize(s.c, 64<<10)
	local := "victim"
	if pad > 0 {
		local = strings.Repeat("v", pad)
	}
	for i := range n {
		rcpt := fmt.Sprintf("%s%d@example.org", local, i)
		if i == 0 {
			rcpt = to
		}
		if _, err := fmt.Fprintf(w, "RCPT TO:<%s>\r\n", rcpt); err != nil {
			break
		}
		res.Sent++
	}
	if data {
		w.WriteString("DATA\r\n")
		w.Flush()
		if <-go354 {
			w.WriteString("From: fbl@provider.example\r\nSubject: complaint\r\n\r\nnot a report\r\n.\r\n")
		}
	}
	w.WriteString("QUIT\r\n")
	w.Flush()
	<-done
	res.Seconds = time.Since(start).Seconds()
	return res
}
