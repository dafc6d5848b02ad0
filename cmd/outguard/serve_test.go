package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run the command itself in a child process:
// OUTGUARD_TEST_RUN_MAIN=1 makes the test binary behave as outguard.
func TestMain(m *testing.M) {
	if os.Getenv("OUTGUARD_TEST_RUN_MAIN") == "1" {
		if os.Getenv("LISTEN_FDS") != "" {
			// systemd sets LISTEN_PID after fork; the child stands in.
			os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		}
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// trialConfig writes the example configuration with its folders in a
// temporary directory, its listeners on free ports and no webhook.
func trialConfig(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/outguard.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := string(raw)
	for old, repl := range map[string]string{
		"data_dir: ../data":            "data_dir: " + filepath.Join(dir, "data"),
		"capture_dir: ../data/capture": "capture_dir: " + filepath.Join(dir, "capture"),
		`"127.0.0.1:2525"`:             `"127.0.0.1:0"`,
		`"127.0.0.1:8025"`:             `"127.0.0.1:0"`,
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("example config has no %q", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	path := filepath.Join(dir, "outguard.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeNotifiesSystemd runs `outguard serve` as systemd would run a
// Type=notify unit and checks what it reports: READY=1 once up, a reload
// on SIGHUP framed by RELOADING=1 and READY=1, STOPPING=1 on SIGTERM,
// then a clean exit.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command(os.Args[0], "serve", "--config", trialConfig(t))
	cmd.Env = append(os.Environ(), "OUTGUARD_TEST_RUN_MAIN=1", "NOTIFY_SOCKET="+sock)
	var logs lockedBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	next := func(want string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v\nlog:\n%s", want, err, logs.String())
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	next("READY=1")
	cmd.Process.Signal(syscall.SIGHUP)
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("STATUS=configuration reloaded")
	next("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v\nlog:\n%s", err, logs.String())
	}
}

// TestServeSocketActivation passes a listening socket to `outguard serve`
// as systemd's socket activation does, and shows that a restart refuses
// no connection: a client that connects while no outguard runs is
// greeted by the next one.
func TestServeSocketActivation(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sockFile, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sockFile.Close()
	cfg := trialConfig(t)
	notify := filepath.Join(t.TempDir(), "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := func() (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(os.Args[0], "serve", "--config", cfg)
		cmd.ExtraFiles = []*os.File{sockFile}
		cmd.Env = append(os.Environ(), "OUTGUARD_TEST_RUN_MAIN=1", "NOTIFY_SOCKET="+notify,
			"LISTEN_FDS=1", "LISTEN_FDNAMES=submission")
		var logs lockedBuffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, &logs
	}
	waitFor := func(want string, logs *lockedBuffer) {
		t.Helper()
		for {
			nc.SetReadDeadline(time.Now().Add(60 * time.Second))
			buf := make([]byte, 4096)
			n, err := nc.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %q: %v\nlog:\n%s", want, err, logs.String())
			}
			if strings.HasPrefix(string(buf[:n]), want) {
				return
			}
		}
	}
	greeting := func(c net.Conn) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("reading the greeting: %v", err)
		}
		return line
	}

	first, logs := start()
	waitFor("READY=1", logs)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if g := greeting(c); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting %q", g)
	}
	c.Close()
	// Log lines reach stderr in batches, up to 50 ms late.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "serving a socket passed by systemd"); {
		if time.Now().After(deadline) {
			t.Errorf("the log does not say the passed socket is served:\n%s", logs.String())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("first outguard: %v\n%s", err, logs.String())
	}

	// No outguard runs: the socket, held by "systemd", still takes the
	// connection, and the next outguard greets it.
	waiting, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("connecting between restarts: %v", err)
	}
	defer waiting.Close()
	second, logs := start()
	if g := greeting(waiting); !strings.HasPrefix(g, "220 ") {
		t.Fatalf("greeting after the restart %q\n%s", g, logs.String())
	}
	second.Process.Signal(syscall.SIGTERM)
	second.Wait()
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
