package app

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// TestCrashChild is the child process of TestCrashSafety: it runs an App
// on the configuration named by OUTGUARD_CRASH_CONFIG, prints its SMTP
// address and waits to be killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("OUTGUARD_CRASH_CONFIG")
	if path == "" {
		t.Skip("child of TestCrashSafety only")
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", a.SMTPAddrs()[1])
	select {}
}

// TestCrashSafety kills outguard with SIGKILL in the middle of a load of
// spam and clean mail, then reopens its database: every message a client
// saw refused with 550 must be in the quarantine, and the file must pass
// bbolt's consistency check.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "OUTGUARD_CRASH_CONFIG="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("child did not start")
	}
	go io.Copy(io.Discard, out)

	var mu sync.Mutex
	var refused []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := smtp.Dial(addr)
				if err != nil {
					return
				}
				if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
					c.Close()
					return
				}
				body := "plain"
				if n%2 == 0 {
					body = gtube
				}
				err = c.SendMail("a@out.example.net", []string{"r@example.org"}, strings.NewReader(testMessage(fmt.Sprintf("w%d", i), fmt.Sprintf("m%d-%d", i, n), body)))
				c.Close()
				if r := replyOf(err); r != nil && r.Code == 550 {
					s := r.Message
					id := strings.TrimSuffix(s[strings.LastIndex(s, "(id ")+4:], ")")
					mu.Lock()
					refused = append(refused, id)
					mu.Unlock()
				}
			}
		}(i)
	}
	// Let the load run, then kill without warning.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(refused)
		mu.Unlock()
		if n >= 40 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	close(stop)
	wg.Wait()
	if len(refused) == 0 {
		t.Fatal("no message was refused before the kill")
	}

	db, err := bolt.Open(filepath.Join(cfg.DataDir, "outguard.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("consistency check: %v", err)
	}
	store, err := quarantine.New(db, quarantine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range refused {
		if _, err := store.Raw(id, quarantine.Actor{Name: "test"}); err != nil {
			t.Errorf("refused %s but not in the quarantine after the crash: %v", id, err)
		}
	}
	t.Logf("%d refused messages all found after SIGKILL", len(refused))
}
