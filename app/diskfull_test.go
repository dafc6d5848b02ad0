package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// TestDiskFull runs TestDiskFullChild in a private mount namespace
// (unshare --mount), where it may mount a small tmpfs as data_dir.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	unshare, err := exec.LookPath("unshare")
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "not root: cannot mount a tmpfs"
	case err != nil:
		why = "unshare not found: " + err.Error()
	}
	if why != "" {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatalf("%s, and OUTGUARD_REQUIRE_EXTERNAL is set", why)
		}
		t.Skipf("SKIPPED: the full-disk test needs root and unshare(1): %s", why)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private",
		os.Args[0], "-test.run=^TestDiskFullChild$", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "OUTGUARD_DISKFULL_CHILD=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if strings.Contains(string(out), "NO-TMPFS") {
		if os.Getenv("OUTGUARD_REQUIRE_EXTERNAL") != "" {
			t.Fatal("the child could not mount a tmpfs, and OUTGUARD_REQUIRE_EXTERNAL is set")
		}
		t.Skip("SKIPPED: the child could not mount a tmpfs in its mount namespace")
	}
	if err != nil {
		t.Fatalf("child failed: %v", err)
	}
}

// TestDiskFullChild is the child of TestDiskFull.
func TestDiskFullChild(t *testing.T) {
	if os.Getenv("OUTGUARD_DISKFULL_CHILD") == "" {
		t.Skip("child of TestDiskFull only")
	}
	// With the reserve, the disk fills up during the run: MAIL is refused
	// before the log runs out of room.
	t.Run("reserve", func(t *testing.T) {
		d := startOnTmpfs(t, "1MiB")
		d.fill(t, 1<<20+96<<10)
		st := d.run(t, 200)
		st.check(t, d)
		if st.codes[452] == 0 {
			t.Errorf("no 452 4.3.1 while the free space went below the reserve: %v", st.codes)
		}
		d.recover(t)
	})
	// Without the reserve the log runs out of room: no 250 without a
	// record, and 451 4.3.0 before relaying once a write failed.
	t.Run("no reserve", func(t *testing.T) {
		d := startOnTmpfs(t, "0")
		d.fill(t, 0)
		st := d.run(t, 200)
		st.check(t, d)
		if st.codes[451] == 0 {
			t.Errorf("no 451 with the message log out of room: %v", st.codes)
		}
		d.recover(t)
	})
}

// fullDisk is an App whose data_dir is a small tmpfs.
type fullDisk struct {
	app    *App
	nh     *testutil.NextHop
	addr   string
	mnt    string
	filler string
}

func startOnTmpfs(t *testing.T, reserve string) *fullDisk {
	nh := testutil.StartNextHop(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "data")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		fmt.Println("NO-TMPFS")
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	y := fmt.Sprintf(`hostname: outguard.test
data_dir: %s
listeners:
  - {name: loopback, address: "127.0.0.1:0", tls: none, allow_insecure_auth: true}
next_hop: {type: smtp, address: %q, pool_size: 8}
domains:
  - name: out.example.net
    users:
      - {name: web, networks: ["127.0.0.0/8"]}
store: {min_free_space: %q}
admin: {address: "127.0.0.1:0"}
`, mnt, nh.Addr, reserve)
	path := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
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
	t.Cleanup(func() { a.Stop() })
	return &fullDisk{app: a, nh: nh, addr: a.SMTPAddrs()[0].String(), mnt: mnt, filler: filepath.Join(mnt, "filler")}
}

// fill writes a file until only about leave bytes are free.
func (d *fullDisk) fill(t *testing.T, leave uint64) {
	f, err := os.Create(d.filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 16<<10)
	for {
		free, _, err := statfs(d.mnt)
		if err != nil {
			t.Fatal(err)
		}
		if free <= leave+uint64(len(chunk)) && leave > 0 {
			break
		}
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	free, _, _ := statfs(d.mnt)
	t.Logf("filled: %d bytes free", free)
}

// runStats is what the clients saw.
type runStats struct {
	codes map[int]int
	// ok are the numbers of the messages answered 250.
	ok []string
}

// run sends n clean messages over 8 connections at a time.
func (d *fullDisk) run(t *testing.T, n int) runStats {
	st := runStats{codes: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := strings.Repeat(fmt.Sprintf("message %d, a line of an ordinary newsletter\r\n", i), 20)
				msg := fmt.Sprintf("From: web@out.example.net\r\nTo: r@example.org\r\nSubject: news %d\r\nMessage-ID: <n%d@out.example.net>\r\n\r\n%s", i, i, body)
				err := sendPlain(d.addr, msg)
				code := 250
				if err != nil {
					r := replyOf(err)
					if r == nil {
						t.Errorf("message %d: %v", i, err)
						continue
					}
					code = r.Code
				}
				mu.Lock()
				st.codes[code]++
				if err == nil {
					st.ok = append(st.ok, fmt.Sprint(i))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return st
}

// check compares what the clients were told with the next hop and the log:
// every message answered 250 has an accepted record.
func (st runStats) check(t *testing.T, d *fullDisk) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Records of refusals may still be queued; the disk is still full,
	// so a flush may fail: what matters is what was committed.
	d.app.store.Flush(ctx)
	page, err := d.app.store.Search(quarantine.Query{Statuses: []quarantine.Status{quarantine.StatusAccepted}, Limit: quarantine.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, r := range page.Records {
		logged[strings.TrimPrefix(strings.TrimSuffix(r.MessageID, "@out.example.net"), "n")] = true
	}
	relayed := len(d.nh.Received())
	free, _, _ := statfs(d.mnt)
	t.Logf("%d bytes free after the run", free)
	t.Logf("replies %v; relayed by the next hop %d; accepted records %d", st.codes, relayed, len(page.Records))
	for _, i := range st.ok {
		if !logged[i] {
			t.Errorf("message %s answered 250 without a record", i)
		}
	}
	if len(st.ok) == 0 {
		t.Error("no message was accepted before the disk filled up")
	}
}

// recover frees the disk and expects mail to be accepted and recorded
// again.
func (d *fullDisk) recover(t *testing.T) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		msg := "From: web@out.example.net\r\nSubject: after\r\nMessage-ID: <after@out.example.net>\r\n\r\nspace again\r\n"
		if err = sendPlain(d.addr, msg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery once space returned: %v", err)
	}
	if _, err := d.app.store.ByMessageID("after@out.example.net"); err != nil {
		t.Errorf("message accepted after recovery has no record: %v", err)
	}
	t.Log("recovered: accepted and recorded once space returned")
}

// sendPlain sends msg as a network user, without TLS or AUTH.
func sendPlain(addr, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.SendMail("web@out.example.net", []string{"r@example.org"}, strings.NewReader(msg))
}

// TestLowSpaceRefusedAtMail: below store.min_free_space MAIL is answered
// 452 4.3.1 and nothing is relayed; once space is back, mail flows. The
// free space comes from a fake statfs, so this runs without root.
func TestLowSpaceRefusedAtMail(t *testing.T) {
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "store: {min_free_space: 100MiB}\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var free atomic.Uint64
	free.Store(50 << 20)
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Statfs: func(string) (uint64, uint64, error) { return free.Load(), 10 << 30, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	addr := a.SMTPAddrs()[1].String()

	err = send(t, addr, "trial", "trial-password")
	if r := replyOf(err); r == nil || r.Code != 452 || r.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) || r.Message != "Insufficient system storage" {
		t.Fatalf("MAIL with 50 MiB free and a 100 MiB reserve: %v, want 452 4.3.1 Insufficient system storage", err)
	}
	if n := len(nh.Received()); n != 0 {
		t.Fatalf("next hop got %d messages while space was low", n)
	}
	free.Store(200 << 20)
	if err := send(t, addr, "trial", "trial-password"); err != nil {
		t.Fatalf("with space back: %v", err)
	}
	want := `# HELP outguard_storage_refusals_total Transactions refused for storage: low_space (452 4.3.1 at MAIL, below store.min_free_space), log_unwritable (451 4.3.0, the message log cannot be written), quarantine_unavailable (451 4.3.0 after DATA: the message would be quarantined but PostgreSQL is out of reach).
# TYPE outguard_storage_refusals_total counter
outguard_storage_refusals_total{reason="log_unwritable"} 0
outguard_storage_refusals_total{reason="low_space"} 1
outguard_storage_refusals_total{reason="quarantine_unavailable"} 0
`
	if err := promtestutil.GatherAndCompare(a.reg, strings.NewReader(want), "outguard_storage_refusals_total"); err != nil {
		t.Error(err)
	}
}

// TestFreeSpaceReadingReused: a reading at least a GiB above the reserve
// stands for a second; near the reserve every check reads again, and a
// reload of the reserve drops the standing reading.
func TestFreeSpaceReadingReused(t *testing.T) {
	var calls atomic.Int64
	var free atomic.Uint64
	statfs := func(string) (uint64, uint64, error) { calls.Add(1); return free.Load(), 100 << 30, nil }
	d := newDataDisk(t.TempDir(), config.FreeSpace{Set: true, Bytes: 1 << 30}, statfs, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	check := func(wantCalls int64, wantLow bool) {
		t.Helper()
		if r := d.check(); (r != nil) != wantLow {
			t.Fatalf("check = %v, want low %v", r, wantLow)
		}
		if n := calls.Load(); n != wantCalls {
			t.Fatalf("statfs called %d times, want %d", n, wantCalls)
		}
	}
	free.Store(3 << 30) // 2 GiB above the reserve
	check(1, false)
	check(1, false)
	now = now.Add(999 * time.Millisecond)
	check(1, false)
	now = now.Add(time.Millisecond)
	free.Store(1<<30 + 1<<20) // 1 MiB above the reserve
	check(2, false)
	check(3, false)
	free.Store(1 << 29)
	check(4, true)
	free.Store(3 << 30)
	check(5, false)
	d.setReserve(config.FreeSpace{Set: true, Bytes: 4 << 30})
	check(6, true)
}
