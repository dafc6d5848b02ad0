package filter

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClamd speaks enough INSTREAM to record what it was sent and answer
// with a fixed reply.
type fakeClamd struct {
	reply string
	mu    sync.Mutex
	got   [][]byte // streams received
	cmds  []string
}

func (f *fakeClamd) start(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return "tcp:" + l.Addr().String()
}

func (f *fakeClamd) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	cmd, err := br.ReadString(0)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.cmds = append(f.cmds, strings.TrimSuffix(cmd, "\x00"))
	f.mu.Unlock()
	if cmd == "zPING\x00" {
		io.WriteString(c, "PONG\x00")
		return
	}
	var stream bytes.Buffer
	for {
		var n uint32
		if err := binary.Read(br, binary.BigEndian, &n); err != nil {
			return
		}
		if n == 0 {
			break
		}
		if _, err := io.CopyN(&stream, br, int64(n)); err != nil {
			return
		}
	}
	f.mu.Lock()
	f.got = append(f.got, stream.Bytes())
	f.mu.Unlock()
	io.WriteString(c, f.reply+"\x00")
}

func TestClamdProtocol(t *testing.T) {
	raw := buildMessage(stdHeaders, textPart(strings.Repeat("chunk me ", 2000)))
	for _, tc := range []struct {
		name      string
		reply     string
		wantClass Class
		wantErr   error
		reasons   []string
	}{
		{"clean", "stream: OK", Clean, nil, nil},
		{"virus", "stream: Win.Test.EICAR_HDB-1 FOUND", Virus, nil, []string{"clamd:Win.Test.EICAR_HDB-1(100)"}},
		{"error reply", "stream: Can't allocate memory ERROR", Clean, ErrUnavailable, nil},
		{"size limit, skip", "INSTREAM size limit exceeded. ERROR", Clean, nil, []string{"clamd:SKIPPED_TOO_LARGE(0)"}},
		{"own limit reached", "stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND", Clean, nil, []string{"clamd:Heuristics.Limits.Exceeded.MaxRecursion(0)"}},
		{"encrypted archive", "stream: Heuristics.Encrypted.Zip FOUND", Clean, nil, []string{"clamd:Heuristics.Encrypted.Zip(0)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeClamd{reply: tc.reply}
			c, err := NewClamd(ClamdOptions{Address: f.start(t), ChunkSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Scan(context.Background(), mustParse(t, raw))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if v.Class != tc.wantClass || !slices.Equal(v.Reasons, tc.reasons) {
				t.Errorf("got %v %q, want %v %q", v.Class, v.Reasons, tc.wantClass, tc.reasons)
			}
			// What clamd could not look into is a gap, not a virus.
			wantGap := map[string]string{"own limit reached": LimitClamdLimits, "encrypted archive": LimitArchiveEncrypted,
				"size limit, skip": LimitClamdStream}[tc.name]
			if got := strings.Join(PartialLimits(v.Gaps), ","); got != wantGap {
				t.Errorf("got gaps %q, want %q", got, wantGap)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.got) != 1 || !bytes.Equal(f.got[0], raw) {
				t.Errorf("got %d streams, want the raw message once, reassembled from chunks", len(f.got))
			}
		})
	}
}

func TestClamdOverLimit(t *testing.T) {
	raw := buildMessage(stdHeaders, textPart(strings.Repeat("x", 5000)))
	for _, tc := range []struct {
		name    string
		over    OverLimit
		onError OnError
		wantErr error
		reasons []string
	}{
		{"skip", OverLimitSkip, OnErrorTempfail, nil, []string{"clamd:SKIPPED_TOO_LARGE(0)"}},
		{"tempfail", OverLimitTempfail, OnErrorTempfail, ErrTempfail, nil},
		{"tempfail even with accept", OverLimitTempfail, OnErrorAccept, ErrTempfail, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeClamd{reply: "stream: OK"}
			e, err := NewClamd(ClamdOptions{Address: f.start(t), MaxStreamBytes: 1000, OverLimit: tc.over})
			if err != nil {
				t.Fatal(err)
			}
			c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), EngineSpec{Engine: e, OnError: tc.onError})
			v, err := c.Classify(context.Background(), mustParse(t, raw))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(v.Reasons, tc.reasons) {
				t.Errorf("got reasons %q, want %q", v.Reasons, tc.reasons)
			}
			// Skipped is partially scanned, never silently clean.
			if wantPartial := tc.over == OverLimitSkip; v.Partial() != wantPartial ||
				(wantPartial && !slices.Equal(PartialLimits(v.Gaps), []string{LimitClamdStream})) {
				t.Errorf("got gaps %v, want partially scanned: %v", v.Gaps, wantPartial)
			}
			if len(f.got) != 0 {
				t.Errorf("got %d streams sent, want none for an oversized message", len(f.got))
			}
		})
	}
}

func TestClamdAddress(t *testing.T) {
	for _, tc := range []struct {
		in, network, addr string
		ok                bool
	}{
		{"tcp:127.0.0.1:3310", "tcp", "127.0.0.1:3310", true},
		{"unix:/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl", true},
		{"127.0.0.1:3310", "", "", false},
		{"tcp:localhost", "", "", false},
		{"unix:", "", "", false},
	} {
		n, a, err := ParseClamdAddress(tc.in)
		if (err == nil) != tc.ok || n != tc.network || a != tc.addr {
			t.Errorf("ParseClamdAddress(%q): got %q %q %v, want %q %q ok=%v", tc.in, n, a, err, tc.network, tc.addr, tc.ok)
		}
	}
}

func eicarMessages(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"base64 attachment": buildMessage(stdHeaders, textPart("see file"), att{ctype: "application/octet-stream", name: "eicar.com", body: eicar}),
		"inside a zip":      buildMessage(stdHeaders, textPart("see file"), att{ctype: "application/zip", name: "eicar.zip", body: makeZip(t, "eicar.com", string(eicar))}),
	}
}

func TestClamdIntegration(t *testing.T) {
	addrs := []string{envOr("OUTGUARD_CLAMD_ADDR", defaultClamdAddr)}
	if sock := envOr("OUTGUARD_CLAMD_SOCKET", "unix:/var/lib/outguard-ci/run/clamd.sock"); sock != "" {
		if _, err := os.Stat(strings.TrimPrefix(sock, "unix:")); err == nil {
			addrs = append(addrs, sock)
		}
	}
	for _, addr := range addrs {
		t.Run(addr, func(t *testing.T) {
			e := realClamd(t, ClamdOptions{Address: addr})
			c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), EngineSpec{Engine: e, Timeout: 30 * time.Second})
			for name, raw := range eicarMessages(t) {
				t.Run(name, func(t *testing.T) {
					v, err := c.Classify(context.Background(), mustParse(t, raw))
					if err != nil {
						t.Fatal(err)
					}
					if v.Class != Virus || len(v.Reasons) != 1 || !strings.HasPrefix(v.Reasons[0], "clamd:") {
						t.Errorf("got %v %q, want virus with the signature as reason", v.Class, v.Reasons)
					}
				})
			}
			t.Run("clean", func(t *testing.T) {
				v, err := c.Classify(context.Background(), mustParse(t, buildMessage(stdHeaders, textPart("hello"), att{ctype: "application/pdf", name: "a.pdf", body: []byte("%PDF-1.4\n%%EOF")})))
				if err != nil || v.Class != Clean {
					t.Errorf("got %v %q %v, want clean", v.Class, v.Reasons, err)
				}
			})
		})
	}
}

func TestClamdDead(t *testing.T) {
	dead, _ := NewClamd(ClamdOptions{Address: "tcp:" + closedAddr(t)})
	silent, _ := NewClamd(ClamdOptions{Address: "tcp:" + silentServer(t)})
	for _, tc := range []struct {
		name    string
		engine  *Clamd
		onError OnError
		wantErr []error
	}{
		{"refused, tempfail", dead, OnErrorTempfail, []error{ErrTempfail, ErrUnavailable}},
		{"refused, accept", dead, OnErrorAccept, nil},
		{"never answers, tempfail", silent, OnErrorTempfail, []error{ErrTempfail, ErrTimeout}},
		{"never answers, accept", silent, OnErrorAccept, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClassifier(t, nil, slog.New(slog.DiscardHandler), EngineSpec{Engine: tc.engine, Timeout: 300 * time.Millisecond, OnError: tc.onError})
			v, err := c.Classify(context.Background(), mustParse(t, eicarMessages(t)["base64 attachment"]))
			for _, w := range tc.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("got %v, want it to wrap %v", err, w)
				}
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Errorf("got %v, want no error", err)
				}
				if !slices.Contains(v.Reasons, "clamd:UNAVAILABLE(0)") {
					t.Errorf("got reasons %q, want clamd:UNAVAILABLE(0)", v.Reasons)
				}
			}
			if v.Class != Clean {
				t.Errorf("got %v, want clean: a dead scanner finds nothing", v.Class)
			}
		})
	}
}

// failingReaderAt fails after the first n bytes, like a spool file on a
// broken disk.
type failingReaderAt struct {
	data []byte
	n    int64
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.n {
		return 0, errors.New("input/output error")
	}
	n := copy(p, f.data[off:min(int64(len(f.data)), f.n)])
	if off+int64(n) >= f.n {
		return n, errors.New("input/output error")
	}
	return n, nil
}

func TestClamdUnreadableMessage(t *testing.T) {
	f := &fakeClamd{reply: "stream: OK"}
	c, err := NewClamd(ClamdOptions{Address: f.start(t), ChunkSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	raw := buildMessage(stdHeaders, textPart(strings.Repeat("x", 5000)))
	m := mustParse(t, raw)
	m.raw, m.size = failingReaderAt{data: raw, n: 1000}, int64(len(raw))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Scan(ctx, m)
	if !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
		t.Errorf("got %v (context %v), want ErrUnavailable at once", err, ctx.Err())
	}
}
