package filter

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// Integration tests use the services started by .ci/scanners.sh. They skip
// when a service does not answer, unless OUTGUARD_REQUIRE_EXTERNAL is set,
// in which case they fail.

const (
	defaultRspamdURL = "http://127.0.0.1:11333"
	defaultClamdAddr = "tcp:127.0.0.1:3310"
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func externalMissing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
		t.Fatalf("%s is required (OUTGUARD_REQUIRE_EXTERNAL is set) but does not answer: %v", what, err)
	}
	t.Skipf("skipping: %s does not answer (start it with `sudo bash .ci/scanners.sh`): %v", what, err)
}

// realRspamd returns an engine for the rspamd of OUTGUARD_RSPAMD_URL.
func realRspamd(t testing.TB, opts RspamdOptions) *Rspamd {
	t.Helper()
	opts.URL = envOr("OUTGUARD_RSPAMD_URL", defaultRspamdURL)
	r, err := NewRspamd(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		externalMissing(t, "rspamd at "+opts.URL, err)
	}
	return r
}

// realClamd returns an engine for the clamd of OUTGUARD_CLAMD_ADDR.
func realClamd(t testing.TB, opts ClamdOptions) *Clamd {
	t.Helper()
	if opts.Address == "" {
		opts.Address = envOr("OUTGUARD_CLAMD_ADDR", defaultClamdAddr)
	}
	c, err := NewClamd(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		externalMissing(t, "clamd at "+opts.Address, err)
	}
	return c
}

// closedAddr returns a loopback address nobody listens on: the port of a
// listener opened and closed again.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections, reads what is sent and never answers,
// until the test ends.
func silentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				go func() { <-done; c.Close() }()
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}
