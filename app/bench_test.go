package app

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/internal/testutil"
)

// BenchmarkRelay measures whole transactions through outguard (AUTH once
// per session, 5 KB messages, 50 concurrent sessions) to a go-smtp next
// hop, with the message log on and off, with the built-in engine and with
// no classification:
//
//	go test -run X -bench Relay -benchtime 5000x ./app
func BenchmarkRelay(b *testing.B) {
	for _, engines := range []string{"builtin", "builtin-nodetection", "none"} {
		extra := ""
		switch engines {
		case "none":
			extra = "filter: {engines: {builtin: {enabled: false}}}\n"
		case "builtin-nodetection":
			// Without the behaviour signals (baseline, campaigns): the
			// difference to builtin is what they cost.
			extra = "identity: {baseline: {enabled: false}, campaigns: {enabled: false}}\n"
		}
		for _, logging := range []bool{true, false} {
			b.Run(fmt.Sprintf("engines=%s/log=%v", engines, logging), func(b *testing.B) {
				nh := testutil.StartNextHop(b)
				path := testConfig(b, nh.Addr, extra)
				// As many pooled next-hop connections as sessions (the
				// tests' pool of 4 would dial for most messages).
				y, err := os.ReadFile(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(path, bytes.Replace(y, []byte("pool_size: 4}"), []byte("pool_size: 64}"), 1), 0o600); err != nil {
					b.Fatal(err)
				}
				benchRelay(b, startApp(b, path), logging)
			})
		}
	}
}

func benchRelay(b *testing.B, a *App, logging bool) {
	b.StopTimer()
	a.pipeline.noLog = !logging
	addr := a.SMTPAddrs()[1].String()
	// Messages take turns among 1000 identities, as on a shared relay (one
	// identity sending thousands an hour would be locked by the baseline).
	body := "From: a@out.example.net\r\nSubject: bench\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog 0123456789 abcdefghij.\r\n", 75)
	msg := "X-AuthUser: bench-000\r\n" + body
	const sessions = 50
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	// Warm the password cache so the timed part is steady state.
	if c, err := smtp.Dial(addr); err == nil {
		c.Auth(sasl.NewPlainClient("", "trial", "trial-password"))
		c.Close()
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := processCPU()
	b.StartTimer()
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
				errs <- err
				return
			}
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					break
				}
				m := fmt.Sprintf("X-AuthUser: bench-%03d\r\n", n%1000) + body
				if err := c.SendMail("a@out.example.net", []string{"r@example.org"}, strings.NewReader(m)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// CPU of the whole process (client, outguard and next hop) per
	// message: the difference between log=true and log=false is what the
	// log costs, whatever the scheduling on a small machine.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
