package smtpclient

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outguard/outguard/internal/testutil"
)

// countingDialer counts the writes to the connections it opens.
type countingDialer struct{ writes atomic.Int64 }

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.d.writes.Add(1)
	return c.Conn.Write(b)
}

// A message goes to the server in writes of 32 KiB, not of the
// connection's 4 KiB buffer: a 200 KB message takes at most eight writes
// after DATA (it took 50), and arrives whole.
func TestBodyWritesInLargeBuffers(t *testing.T) {
	nh := testutil.StartNextHop(t)
	d := &countingDialer{}
	c, err := Dial(context.Background(), Options{Address: nh.Addr, Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Mail(ctx, "a@example.com", MailOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(ctx, "b@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Data(ctx); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: big\r\n\r\n" + strings.Repeat("a line of text that is not short at all.\r\n.dot\r\n", 200_000/48)
	before := d.writes.Load()
	if _, err := c.Body(ctx, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	// Dot-stuffing adds one octet per ".dot" line.
	wire := len(msg) + strings.Count(msg, "\r\n.") + len(".\r\n")
	if n, most := d.writes.Load()-before, int64(wire/(32<<10)+1); n > most {
		t.Errorf("the body of %d octets took %d writes, want at most %d", wire, n, most)
	}
	got := nh.Received()
	if len(got) != 1 || !bytes.Equal(got[0].Data, []byte(msg)) {
		t.Errorf("the server got %d messages, or not the one sent", len(got))
	}
}
