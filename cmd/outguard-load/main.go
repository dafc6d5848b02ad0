// Command outguard-load drives concurrent SMTP sessions against a server
// and reports throughput and latency. It measures outguard (or anything
// that speaks SMTP): see bench/relay.sh.
package main

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outguard/outguard/internal/loadmsg"
)

const help = `Usage:
  outguard-load [flags]

Opens C concurrent SMTP sessions to ADDR and sends M messages of S bytes in
all, then prints messages per second and the latency from MAIL to the final
reply (p50, p99, max). Sessions authenticate with AUTH PLAIN when --user is
set, reuse their connection for many messages unless --new-conn is given,
and pipeline MAIL, RCPT and DATA (RFC 2920) unless --no-pipelining is given.
With --bdat the message goes in BDAT chunks (CHUNKING, RFC 3030) of
--chunk bytes (0: one chunk) instead of DATA: no dot-stuffing, and the
server reads it in bulk; the server must offer CHUNKING.

--addr takes several servers separated by commas (two nodes of a fleet):
session i connects to the i-th of them, round robin, so C sessions are
spread evenly; the figures are for all of them together, and
"per_addr" (in --json) says how many messages each server accepted.

With --hold D every session connects (and authenticates) first; once all
are connected the tool prints "connected N" on standard error, keeps them
idle for D, and only then sends. That measures what idle sessions cost
the server, and makes the C sessions send at the same time (see
bench/memory.sh).

Exit status: 0 when every message got a 2xx, 1 when any failed, 2 on bad
usage.

Examples:
  outguard-load --addr 127.0.0.1:2525 --user trial --password trial-password -c 10 -m 2000 -s 5120
  outguard-load --addr 127.0.0.1:25 -c 50 -m 10000 -s 51200 --json
  outguard-load --addr 127.0.0.1:25 -c 50 -m 10000 -s 51200 --bdat --chunk 16384
`

type options struct {
	addr, user, password, from, rcpt string
	// addrs is addr split at its commas; session i uses addrs[i%len].
	addrs                           []string
	sessions, messages, size        int
	identities                      int
	newConn, noPipelining, startTLS bool
	bdat                            bool
	chunk                           int
	asJSON                          bool
	timeout                         time.Duration
	// hold, when set, connects every session before any sends, then
	// waits this long (see help).
	hold time.Duration
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outguard-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help, "\nFlags:\n")
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:2525", "server `host:port`, or several separated by commas (sessions take them in turn)")
	fs.StringVar(&o.user, "user", "", "AUTH PLAIN user name (empty: no AUTH)")
	fs.StringVar(&o.password, "password", "", "AUTH PLAIN password")
	fs.StringVar(&o.from, "from", "load@out.example.net", "envelope sender")
	fs.StringVar(&o.rcpt, "rcpt", "sink@example.org", "recipient")
	fs.IntVar(&o.sessions, "c", 10, "concurrent sessions")
	fs.IntVar(&o.messages, "m", 1000, "messages in all")
	fs.IntVar(&o.size, "s", 5120, "message size in bytes")
	fs.IntVar(&o.identities, "identities", 1000, "distinct end users (X-AuthUser loader-N) the messages take turns with, as on a shared relay; 1 sends every message as one identity, which outguard's baseline detector locks once it sends far more than a new identity may (docs/baseline.md)")
	fs.BoolVar(&o.newConn, "new-conn", false, "open a new connection for every message")
	fs.BoolVar(&o.noPipelining, "no-pipelining", false, "wait for each reply before the next command")
	fs.BoolVar(&o.startTLS, "starttls", false, "use STARTTLS (certificate not verified)")
	fs.BoolVar(&o.bdat, "bdat", false, "send the message with BDAT (CHUNKING, RFC 3030) instead of DATA")
	fs.IntVar(&o.chunk, "chunk", 0, "with --bdat, bytes per BDAT chunk (0: the whole message in one BDAT LAST)")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "per-reply timeout")
	fs.DurationVar(&o.hold, "hold", 0, "connect every session first, keep them idle this long, then send (0: send as each connects)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.sessions < 1 || o.messages < 1 || o.size < 100 || o.chunk < 0 || o.hold < 0 {
		fmt.Fprintln(stderr, "outguard-load: -c and -m must be at least 1, -s at least 100, --chunk and --hold not negative")
		return 2
	}
	for _, a := range strings.Split(o.addr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			fmt.Fprintln(stderr, "outguard-load: --addr has an empty server")
			return 2
		}
		o.addrs = append(o.addrs, a)
	}
	res := load(o, stderr)
	if o.asJSON {
		json.NewEncoder(stdout).Encode(res)
	} else {
		fmt.Fprintf(stdout, "messages %d ok %d failed %d in %.2fs\nmsgs/s %.1f\nlatency p50 %s p99 %s max %s\n",
			res.Messages, res.OK, res.Failed, res.Seconds, res.MsgsPerSec,
			time.Duration(res.P50us)*time.Microsecond, time.Duration(res.P99us)*time.Microsecond, time.Duration(res.MaxUs)*time.Microsecond)
		if len(res.PerAddr) > 1 {
			for _, a := range o.addrs {
				fmt.Fprintf(stdout, "%s ok %d\n", a, res.PerAddr[a])
			}
		}
		if res.FirstError != "" {
			fmt.Fprintf(stdout, "first error: %s\n", res.FirstError)
		}
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}

type result struct {
	Messages   int     `json:"messages"`
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P50us      int64   `json:"p50_us"`
	P99us      int64   `json:"p99_us"`
	MaxUs      int64   `json:"max_us"`
	FirstError string  `json:"first_error,omitempty"`
	// PerAddr counts the messages each server accepted.
	PerAddr map[string]int `json:"per_addr"`
}

func load(o options, stderr io.Writer) result {
	body := loadmsg.Message(o.size)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	var firstErr string
	perAddr := make(map[string]int, len(o.addrs))
	fail := func(err error) {
		mu.Lock()
		failed++
		if firstErr == "" {
			firstErr = err.Error()
		}
		mu.Unlock()
	}
	// With --hold, every session connects before any sends: connected
	// counts the attempts, go is closed when the hold is over.
	var connected sync.WaitGroup
	goSend := make(chan struct{})
	var start time.Time // when sending starts; set before goSend closes
	if o.hold > 0 {
		connected.Add(o.sessions)
		go func() {
			connected.Wait()
			fmt.Fprintf(stderr, "connected %d\n", o.sessions)
			time.Sleep(o.hold)
			start = time.Now()
			close(goSend)
		}()
	} else {
		start = time.Now()
		close(goSend)
	}
	var wg sync.WaitGroup
	for i := 0; i < o.sessions; i++ {
		wg.Add(1)
		addr := o.addrs[i%len(o.addrs)]
		go func() {
			defer wg.Done()
			var c *client
			if o.hold > 0 {
				var err error
				if c, err = dial(o, addr); err != nil {
					// The send loop dials again and counts the failure.
					c = nil
				}
				connected.Done()
			}
			<-goSend
			for {
				n := next.Add(1)
				if n > int64(o.messages) {
					break
				}
				if c == nil {
					var err error
					if c, err = dial(o, addr); err != nil {
						fail(err)
						continue
					}
				}
				d, err := c.send(o, body, int(n%int64(max(o.identities, 1))))
				if err != nil {
					fail(err)
					c.close()
					c = nil
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				perAddr[addr]++
				mu.Unlock()
				if o.newConn {
					c.quit()
					c = nil
				}
			}
			if c != nil {
				c.quit()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{Messages: o.messages, OK: len(lat), Failed: failed, Seconds: el.Seconds(), FirstError: firstErr, PerAddr: perAddr}
	if el > 0 {
		r.MsgsPerSec = float64(len(lat)) / el.Seconds()
	}
	if n := len(lat); n > 0 {
		r.P50us = lat[n/2].Microseconds()
		r.P99us = lat[min(n-1, n*99/100)].Microseconds()
		r.MaxUs = lat[n-1].Microseconds()
	}
	return r
}

type client struct {
	conn net.Conn
	text *textproto.Conn
	// chunking is set when the server's EHLO reply offers CHUNKING.
	chunking bool
}

func dial(o options, addr string) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, o.timeout)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, text: textproto.NewConn(conn)}
	c.conn.SetDeadline(time.Now().Add(o.timeout))
	if _, _, err := c.text.ReadResponse(220); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.ehlo(); err != nil {
		conn.Close()
		return nil, err
	}
	if o.startTLS {
		if err := c.cmd(220, "STARTTLS"); err != nil {
			conn.Close()
			return nil, err
		}
		c.conn = tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
		c.text = textproto.NewConn(c.conn)
		if err := c.ehlo(); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if o.bdat && !c.chunking {
		conn.Close()
		return nil, fmt.Errorf("--bdat: %s does not offer CHUNKING", addr)
	}
	if o.user != "" {
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + o.user + "\x00" + o.password))
		if err := c.cmd(235, "AUTH PLAIN "+ir); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

// ehlo greets the server and notes whether it offers CHUNKING.
func (c *client) ehlo() error {
	if err := c.text.PrintfLine("EHLO outguard-load"); err != nil {
		return err
	}
	_, msg, err := c.text.ReadResponse(250)
	if err != nil {
		return fmt.Errorf("EHLO: %w (%s)", err, msg)
	}
	c.chunking = false
	for _, l := range strings.Split(msg, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "CHUNKING") {
			c.chunking = true
		}
	}
	return nil
}

func (c *client) cmd(code int, line string) error {
	if err := c.text.PrintfLine("%s", line); err != nil {
		return err
	}
	if _, msg, err := c.text.ReadResponse(code); err != nil {
		return fmt.Errorf("%s: %w (%s)", strings.Fields(line)[0], err, msg)
	}
	return nil
}

// send sends one message and returns the time from MAIL to the final
// reply.
func (c *client) send(o options, body []byte, ident int) (time.Duration, error) {
	c.conn.SetDeadline(time.Now().Add(o.timeout))
	start := time.Now()
	mail := "MAIL FROM:<" + o.from + ">"
	rcpt := "RCPT TO:<" + o.rcpt + ">"
	if o.bdat {
		if err := c.sendBDAT(o, mail, rcpt, body, ident); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	if o.noPipelining {
		for _, s := range []struct {
			line string
			code int
		}{{mail, 250}, {rcpt, 250}, {"DATA", 354}} {
			if err := c.cmd(s.code, s.line); err != nil {
				return 0, err
			}
		}
	} else {
		if _, err := c.conn.Write([]byte(mail + "\r\n" + rcpt + "\r\nDATA\r\n")); err != nil {
			return 0, err
		}
		for _, code := range []int{250, 250, 354} {
			if _, msg, err := c.text.ReadResponse(code); err != nil {
				return 0, fmt.Errorf("pipelined reply: %w (%s)", err, msg)
			}
		}
	}
	w := c.text.DotWriter()
	if _, err := fmt.Fprintf(w, "X-AuthUser: loader-%d\r\n", ident); err != nil {
		return 0, err
	}
	if _, err := w.Write(body); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	if _, msg, err := c.text.ReadResponse(250); err != nil {
		return 0, fmt.Errorf("final reply: %w (%s)", err, msg)
	}
	return time.Since(start), nil
}

// sendBDAT sends one transaction with the message in BDAT chunks (RFC
// 3030). Pipelined, MAIL, RCPT and every chunk go before the first reply
// is read, as RFC 3030 section 4.2 allows with PIPELINING; otherwise each
// command waits for its reply.
func (c *client) sendBDAT(o options, mail, rcpt string, body []byte, ident int) error {
	msg := append([]byte(fmt.Sprintf("X-AuthUser: loader-%d\r\n", ident)), body...)
	size := o.chunk
	if size <= 0 || size > len(msg) {
		size = len(msg)
	}
	var chunks [][]byte
	for len(msg) > size {
		chunks = append(chunks, msg[:size])
		msg = msg[size:]
	}
	chunks = append(chunks, msg)
	bdat := func(i int) []byte {
		last := ""
		if i == len(chunks)-1 {
			last = " LAST"
		}
		return append([]byte(fmt.Sprintf("BDAT %d%s\r\n", len(chunks[i]), last)), chunks[i]...)
	}
	if o.noPipelining {
		if err := c.cmd(250, mail); err != nil {
			return err
		}
		if err := c.cmd(250, rcpt); err != nil {
			return err
		}
		for i := range chunks {
			if _, err := c.conn.Write(bdat(i)); err != nil {
				return err
			}
			if _, msg, err := c.text.ReadResponse(250); err != nil {
				return fmt.Errorf("BDAT chunk %d of %d: %w (%s)", i+1, len(chunks), err, msg)
			}
		}
		return nil
	}
	out := []byte(mail + "\r\n" + rcpt + "\r\n")
	for i := range chunks {
		out = append(out, bdat(i)...)
	}
	if _, err := c.conn.Write(out); err != nil {
		return err
	}
	for i := 0; i < 2+len(chunks); i++ {
		if _, msg, err := c.text.ReadResponse(250); err != nil {
			return fmt.Errorf("pipelined reply %d: %w (%s)", i+1, err, msg)
		}
	}
	return nil
}

func (c *client) quit() {
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	c.text.PrintfLine("QUIT")
	c.text.ReadResponse(221)
	c.conn.Close()
}

func (c *client) close() { c.conn.Close() }
