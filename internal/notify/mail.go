package notify

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"
)

// MailOptions build the mail sent to an abuse contact on automatic locks.
type MailOptions struct {
	// From is the From address, e.g. outguard@mta.example.net.
	From string
	// Hostname names outguard in the text and the Message-ID.
	Hostname string
}

// BuildMail returns a short plain-text RFC 5322 message telling to about
// ev, marked Auto-Submitted: auto-generated so that responders do not
// answer it. The event id makes the Message-ID, so a retried mail keeps
// it.
func BuildMail(ev Event, o MailOptions, to string, now time.Time) []byte {
	var b bytes.Buffer
	hdr := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	hdr("From", o.From)
	hdr("To", to)
	hdr("Subject", mime.QEncoding.Encode("utf-8", oneLine("[outguard] "+ev.Summary, 200)))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+ev.ID+".notify@"+o.Hostname+">")
	hdr("Auto-Submitted", "auto-generated")
	hdr("X-Auto-Response-Suppress", "All")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	line := func(format string, args ...any) {
		b.WriteString(oneLine(fmt.Sprintf(format, args...), 900))
		b.WriteString("\r\n")
	}
	line("%s", ev.Summary)
	line("")
	line("Event:           %s (id %s)", ev.Type, ev.ID)
	line("Time:            %s", ev.At.UTC().Format(time.RFC3339))
	line("Domain:          %s", ev.Domain)
	if ev.User != "" {
		line("Outgoing user:   %s", ev.User)
	}
	if ev.Identity != "" {
		line("Identity:        %s", ev.Identity)
	}
	if l := ev.Lock; l != nil {
		if l.Counter != "" {
			line("Threshold:       %d %s within %s (reached %d)", l.Threshold, l.Counter, l.Window, l.Count)
		}
		if !l.Expires.IsZero() {
			line("Locked until:    %s", l.Expires.UTC().Format(time.RFC3339))
		} else if ev.Type == EventAutoLock {
			line("Locked until:    unlocked by an administrator (permanent)")
		}
		line("Lock id:         %s", l.ID)
	}
	if len(ev.TxIDs) > 0 {
		line("")
		line("Transactions that counted (see `outguard quarantine show ID`):")
		for _, id := range ev.TxIDs {
			line("  %s", id)
		}
	}
	if ev.Identity != "" && ev.Type == EventAutoLock {
		line("")
		line("To lift the lock once the account is cleaned up:")
		line("  outguard unlock identity %s --domain %s --reason TEXT", shellQuote(ev.Identity), ev.Domain)
	}
	line("")
	line("-- ")
	line("outguard on %s", o.Hostname)
	return b.Bytes()
}

// oneLine strips control characters (a value from a message header must
// not start a new header or line) and caps the length.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '@' || r == '.' || r == '-' || r == '_' || r == '+' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
