package app

import (
	"fmt"
	"strings"
	"time"

	"github.com/outguard/outguard/quarantine"
	"github.com/outguard/outguard/smtpd"
)

// releaseReceived is the Received field (RFC 5321 4.4) outguard prepends
// to a released copy, as it does to relayed mail: the client's address,
// outguard's hostname and the transaction's log id, with a comment saying
// the message comes out of the quarantine, and the time of the release.
func releaseReceived(hostname string, rec *quarantine.Record, at time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	if rec.ClientIP.IsValid() {
		b.WriteString(smtpd.AddressLiteral(rec.ClientIP))
	} else {
		b.WriteString("unknown")
	}
	fmt.Fprintf(&b, "\r\n\tby %s (outguard) id %s (released from quarantine)", hostname, rec.ID)
	if len(rec.Recipients) == 1 && !rec.Recipients[0].Refused {
		if p, ok := angle(rec.Recipients[0].Address); ok {
			fmt.Fprintf(&b, "\r\n\tfor %s", p)
		}
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", at.Format(time.RFC1123Z))
	return b.String()
}

// angle writes an address as a path for the Received field's "for" clause;
// an address with characters that would break the field is left out.
func angle(addr string) (string, bool) {
	if addr == "" || strings.ContainsAny(addr, "\r\n<>\x00") {
		return "", false
	}
	return "<" + addr + ">", true
}
