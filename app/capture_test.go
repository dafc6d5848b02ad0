package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/quarantine"
)

// startTrial starts the shipped example configuration (the trial: capture
// next hop, ARF reports on) on port 0 in a temporary folder.
func startTrial(t *testing.T) (*App, string) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "testdata", "outguard.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.NextHop.CaptureDir = filepath.Join(dir, "capture")
	cfg.Store.Path = filepath.Join(dir, "outguard.db")
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Admin.Address = "127.0.0.1:0"
	a, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop() })
	return a, cfg.NextHop.CaptureDir
}

// trialSend relays msg as the trial user and returns the final reply's
// text or the refusal.
func trialSend(t *testing.T, a *App, msg string) (string, error) {
	t.Helper()
	c, err := smtp.DialStartTLS(a.SMTPAddrs()[0].String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "trial", "trial-password")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("web@out.example.net", nil); err != nil {
		return "", err
	}
	if err := c.Rcpt("rcpt@example.org", nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	io.WriteString(w, msg)
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	return resp.StatusText, nil
}

type captured struct {
	MailFrom string   `json:"mail_from"`
	RcptTo   []string `json:"rcpt_to"`
}

func readCaptured(t *testing.T, dir, name string) (string, captured) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	var env captured
	jb, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil || json.Unmarshal(jb, &env) != nil {
		t.Fatalf("envelope of %s: %s, %v", name, jb, err)
	}
	return string(b), env
}

// TestTrialCaptureNamesFilesByLogID checks the trial's capture folder: a
// relayed message is filed under its transaction's log id, and the ARF
// report about a blocked message lands there too, as <log id>.arf.
func TestTrialCaptureNamesFilesByLogID(t *testing.T) {
	a, dir := startTrial(t)
	text, err := trialSend(t, a, "Subject: hello\r\nX-AuthUser: alice\r\n\r\nhi\r\n")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(text, "(id ")
	if i < 0 {
		t.Fatalf("reply %q has no log id", text)
	}
	id := strings.TrimSuffix(text[i+4:], ")")
	body, env := readCaptured(t, dir, id)
	if !strings.Contains(body, "id "+id) || env.MailFrom != "web@out.example.net" {
		t.Errorf("%s.eml: envelope %+v, message %q", id, env, body)
	}
	if !strings.Contains(text, "captured as "+id+".eml") {
		t.Errorf("reply %q does not name the file", text)
	}

	_, err = trialSend(t, a, "Subject: win\r\nX-AuthUser: bob\r\n\r\n"+gtube+"\r\n")
	if r := replyOf(err); r == nil || r.Code != 550 {
		t.Fatalf("GTUBE: %v, want 550", err)
	}
	bid := idOf(t, err)
	name := bid + ".arf"
	deadline := time.Now().Add(20 * time.Second)
	for !fileExistsT(filepath.Join(dir, name+".json")) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rep, renv := readCaptured(t, dir, name)
	if renv.MailFrom != "" || len(renv.RcptTo) != 1 || renv.RcptTo[0] != "abuse@out.example.net" || !strings.Contains(rep, "multipart/report") || !strings.Contains(rep, bid) {
		t.Errorf("report %s: envelope %+v, %d bytes", name, renv, len(rep))
	}
	if fileExistsT(filepath.Join(dir, bid+".eml")) {
		t.Error("the blocked message itself is in the capture folder")
	}
	// Released, it lands there as <log id>.released, below outguard's
	// Received field.
	if _, err := a.store.Release(context.Background(), bid, quarantine.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	rel, relEnv := readCaptured(t, dir, bid+".released")
	if !strings.HasPrefix(rel, "Received: from [127.0.0.1]") || !strings.Contains(rel, "id "+bid+" (released from quarantine)") || relEnv.MailFrom != "web@out.example.net" {
		t.Errorf("released copy: envelope %+v, starts %q", relEnv, rel[:min(len(rel), 120)])
	}
}

func fileExistsT(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
