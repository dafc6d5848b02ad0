package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run the command itself in a child process:
// OUTGUARD_TEST_RUN_MAIN=1 makes the test binary behave as outguard.
func TestMain(m *testing.M) {
	if os.Getenv("OUTGUARD_TEST_RUN_MAIN") == "1" {
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
	var logs strings.Builder
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
