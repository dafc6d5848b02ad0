package smtpd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/outguard/outguard/internal/txid"
)

// CaptureNextHop is the trial next hop: it writes each relayed message to
// a folder instead of sending it on, as NAME.eml plus NAME.json holding
// the envelope. NAME is the transaction's log id (MailOptions.Name), so
// `outguard logs` and the folder name the same message; a report or a
// released copy handed to Deliver is named as its caller said
// (WithDeliveryName), and anything unnamed gets a fresh log id. It is
// for trying outguard out, never for production: nothing leaves the
// machine.
type CaptureNextHop struct {
	Dir string
	// MaxBytes bounds one captured message; default 64 MiB.
	MaxBytes int64
}

var _ NextHop = (*CaptureNextHop)(nil)

// Begin starts a captured transaction.
func (h *CaptureNextHop) Begin(ctx context.Context, from string, opts MailOptions) (NextHopTx, error) {
	if err := os.MkdirAll(h.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("%w: capture folder: %v", ErrNextHopUnavailable, err)
	}
	return &captureTx{h: h, from: from, name: opts.Name}, nil
}

type captureTx struct {
	h     *CaptureNextHop
	from  string
	name  string
	rcpts []string
}

// safeName reports whether name can be a file name in the capture folder
// as it is: letters, digits, '.', '-' and '_', not starting with '.'.
func safeName(name string) bool {
	if name == "" || len(name) > 100 || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (t *captureTx) Rcpt(ctx context.Context, to string) error {
	t.rcpts = append(t.rcpts, to)
	return nil
}

func (t *captureTx) Data(ctx context.Context, r io.Reader) (string, error) {
	max := t.h.MaxBytes
	if max == 0 {
		max = 64 << 20
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, max+1)); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	if int64(buf.Len()) > max {
		return "", replyTooLarge
	}
	name := t.name
	if !safeName(name) {
		name = txid.New(time.Now())
	}
	// A name used before (a report sent again after a lost reply) gets a
	// counter rather than replacing the earlier file.
	base := name
	for i := 2; fileExists(filepath.Join(t.h.Dir, name+".eml")) && i < 1000; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	env, _ := json.MarshalIndent(struct {
		MailFrom string   `json:"mail_from"`
		RcptTo   []string `json:"rcpt_to"`
	}{t.from, t.rcpts}, "", "  ")
	// Write the envelope last and both through a rename, so a reader
	// that sees NAME.json finds NAME.eml complete.
	if err := writeFileAtomic(filepath.Join(t.h.Dir, name+".eml"), buf.Bytes()); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	if err := writeFileAtomic(filepath.Join(t.h.Dir, name+".json"), append(env, '\n')); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNextHopUnavailable, err)
	}
	return "Ok: captured as " + name + ".eml (trial capture next hop, not delivered)", nil
}

func (t *captureTx) Abort() {}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
