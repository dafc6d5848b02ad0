package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startFastSink starts a minimal SMTP server that accepts everything and
// does as little as it can, so that a benchmark measures the client.
func startFastSink(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				w.WriteString("220 sink ESMTP\r\n")
				w.Flush()
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(string(bytes.TrimSpace(line))); {
					case strings.HasPrefix(cmd, "EHLO"):
						w.WriteString("250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100000000\r\n250 SMTPUTF8\r\n")
					case cmd == "DATA":
						w.WriteString("354 go\r\n")
						w.Flush()
						for {
							l, err := r.ReadSlice('\n')
							if err != nil {
								return
							}
							if string(l) == ".\r\n" {
								break
							}
						}
						w.WriteString("250 2.0.0 Ok: queued\r\n")
					case cmd == "QUIT":
						w.WriteString("221 bye\r\n")
						w.Flush()
						return
					default:
						w.WriteString("250 2.0.0 Ok\r\n")
					}
					w.Flush()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkNextHopClient relays 5 KB messages through the pooled next
// hop (8 at a time) to a minimal sink: the cost of the relay's SMTP
// client (internal/smtpclient) on its own. It also ran with go-smtp's
// Client behind the same pool for the figures in that package's comment.
//
//	go test -run X -bench NextHopClient -benchmem ./smtpd
func BenchmarkNextHopClient(b *testing.B) {
	raw := []byte("From: a@out.example.net\r\nSubject: bench\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789 abcdefghij.\r\n", 75))
	h, err := NewSMTPNextHop(NextHopOptions{Address: startFastSink(b), PoolSize: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := Deliver(context.Background(), h, "a@out.example.net", []string{"b@example.org"}, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	// The sink runs in this process too: compare clients by difference.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
