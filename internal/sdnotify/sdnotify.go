// Package sdnotify tells systemd about the daemon's state, for units of
// Type=notify (sd_notify(3)): READY=1 once the listeners are open,
// RELOADING=1 while a SIGHUP reload runs, STOPPING=1 on the way out. It
// also finds the sockets systemd passes for socket activation
// (sd_listen_fds(3)). Without NOTIFY_SOCKET or LISTEN_FDS, as outside
// systemd, it does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Notify sends state (newline-separated VAR=value assignments) to the
// socket named by $NOTIFY_SOCKET. It reports false, with no error, when
// the variable is unset.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	if strings.HasPrefix(path, "@") {
		// An abstract socket: its name starts with a NUL byte.
		path = "\x00" + path[1:]
	} else if !strings.HasPrefix(path, "/") {
		return false, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}

// Ready says that start-up or a reload is complete.
func Ready() (bool, error) { return Notify("READY=1") }

// Reloading says that a reload began. systemd wants the monotonic clock
// with it, to match the READY=1 that ends the reload.
func Reloading() (bool, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping says that the daemon is shutting down.
func Stopping() (bool, error) { return Notify("STOPPING=1") }

// Status sets the free-text status systemctl status shows.
func Status(s string) (bool, error) {
	return Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// Listeners returns the stream sockets systemd passed to this process
// (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), by name: the FileDescriptorName=
// of their .socket unit's entries, or "" when unnamed. It unsets the
// variables so that child processes do not take the sockets for theirs.
// Without socket activation it returns an empty map.
func Listeners() (map[string][]net.Listener, error) {
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	out := map[string][]net.Listener{}
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return out, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("sdnotify: LISTEN_FDS %q: not a descriptor count", os.Getenv("LISTEN_FDS"))
	}
	var names []string
	if v := os.Getenv("LISTEN_FDNAMES"); v != "" {
		names = strings.Split(v, ":")
	}
	for i := range n {
		fd := listenFDsStart + i
		unix.CloseOnExec(fd)
		name := ""
		if i < len(names) {
			name = names[i]
		}
		f := os.NewFile(uintptr(fd), "listen-fd-"+name)
		l, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			return nil, fmt.Errorf("sdnotify: passed descriptor %d (%q) is not a listening stream socket: %w", fd, name, err)
		}
		out[name] = append(out[name], l)
	}
	return out, nil
}
