package sdnotify

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	c := listen(t)
	for _, tc := range []struct {
		send func() (bool, error)
		want string
	}{
		{Ready, "READY=1"},
		{Stopping, "STOPPING=1"},
		{func() (bool, error) { return Status("reload failed:\nbad key") }, "STATUS=reload failed: bad key"},
	} {
		if ok, err := tc.send(); !ok || err != nil {
			t.Fatalf("send %q: %v %v", tc.want, ok, err)
		}
		if got := receive(t, c); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if ok, err := Reloading(); !ok || err != nil {
		t.Fatalf("Reloading: %v %v", ok, err)
	}
	got := receive(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading sent %q", got)
	}
	if usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec <= 0 {
		t.Errorf("MONOTONIC_USEC %q", lines[1])
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := Ready(); ok || err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v %v, want false, nil", ok, err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if _, err := Ready(); err == nil {
		t.Error("a relative NOTIFY_SOCKET gave no error")
	}
}

func TestListenersOutsideSystemd(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	ls, err := Listeners()
	if err != nil || len(ls) != 0 {
		t.Errorf("LISTEN_PID of another process: %v %v, want none", ls, err)
	}
}

// TestListeners passes a listening socket to a child process as fd 3, as
// systemd does, and talks to the child through it.
func TestListeners(t *testing.T) {
	if os.Getenv("SDNOTIFY_TEST_CHILD") == "1" {
		// systemd sets LISTEN_PID after fork; the child stands in for it.
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		ls, err := Listeners()
		if err != nil || len(ls["smtp"]) != 1 || os.Getenv("LISTEN_FDS") != "" {
			os.Stdout.WriteString("bad: " + strconv.Itoa(len(ls["smtp"])) + "\n")
			os.Exit(1)
		}
		conn, err := ls["smtp"][0].Accept()
		if err != nil {
			os.Exit(1)
		}
		conn.Write([]byte("hello from the child\n"))
		conn.Close()
		os.Exit(0)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestListeners$")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "SDNOTIFY_TEST_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=smtp")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if line != "hello from the child\n" {
		t.Errorf("read %q, %v", line, err)
	}
}
