package app

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/filter"
)

// lateEngine ignores its deadline, as a hung scanner does, and reads the
// message only once the test lets it: after the client got its reply and
// the session closed the message.
type lateEngine struct {
	release chan struct{}
	// read receives one line per scan once it has read: "" when the
	// read failed or saw its own message, else what it saw.
	read chan string
}

func (e *lateEngine) Name() string { return "late" }

func (e *lateEngine) Scan(ctx context.Context, m *filter.Message) (filter.Verdict, error) {
	want := m.Header.Get("Subject")
	<-ctx.Done()
	<-e.release
	b, err := io.ReadAll(m.Raw())
	if err == nil && !strings.Contains(string(b), "Subject: "+want+"\r\n") {
		e.read <- fmt.Sprintf("engine of %q read %.60q", want, b)
	} else {
		e.read <- ""
	}
	return filter.Verdict{}, ctx.Err()
}

// TestLateScannerNeverReadsRecycledBuffer: a scanner still reading after
// its timeout must not see the storage of the message it was given once
// the transaction closed, when that storage may hold the next message.
// Run with -race: on a shared buffer the race detector reports it too.
func TestLateScannerNeverReadsRecycledBuffer(t *testing.T) {
	e := newEnv(t, "", "")
	const n = 12
	late := &lateEngine{release: make(chan struct{}), read: make(chan string, n)}
	cl, err := filter.New(filter.Options{Engines: []filter.EngineSpec{
		{Engine: late, Timeout: 20 * time.Millisecond, OnError: filter.OnErrorAccept},
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.app.pipeline.classifier.Store(cl)
	for i := range n {
		body := strings.Repeat(fmt.Sprintf("line %d of a message that fills its buffer\r\n", i), 40)
		if err := e.send("shop@out.example.net", testMessage("", fmt.Sprintf("message-%d", i), body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	close(late.release)
	for range n {
		if bad := <-late.read; bad != "" {
			t.Error(bad)
		}
	}
}
