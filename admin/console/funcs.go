package console

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// consoleFuncs are the templates' helpers. They return plain strings:
// html/template escapes every one of them for its context.
var consoleFuncs = template.FuncMap{
	"when":        fmtTime,
	"join":        strings.Join,
	"idSegments":  idSegments,
	"lockURL":     lockURL,
	"identityURL": identityURL,
	"auditURL":    auditTargetURL,
	"lockLink":    lockLink,
	"dur":         fmtDuration,
	"score":       func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"percent":     percent,
	"recipients":  recipientList,
	"hasContent":  func(r *quarantine.Record) bool { return r.Quarantine.HasContent() },
	"released":    func(r *quarantine.Record) bool { return r.Quarantine != nil && r.Quarantine.Released() },
	"statusIcon":  statusIcon,
	"verdictIcon": verdictIcon,
	"band":        band,
	"bandIcon":    bandIcon,
	"f1":          func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"size":        fmtSize,
	"msgURL":      func(id string) string { return "/log/" + url.PathEscape(id) },
	"checked":     func(m map[string]bool, k string) bool { return m[k] },
	"dict":        dict,
	"isActive":    func(h identity.HistoryEntry) bool { return h.Action == identity.ActionLock },
	"addr":        addrHTML,
	"addrs":       recipientsHTML,
}

// addrHTML escapes an address and lets it break only after its @ (a
// <wbr>), so that a narrow column wraps it between its two parts and
// never inside a word (the stylesheet's .addr breaks a part only when it
// is wider than the column on its own).
func addrHTML(s string) template.HTML {
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return template.HTML(template.HTMLEscapeString(s))
	}
	return template.HTML(template.HTMLEscapeString(local) + "@<wbr>" + template.HTMLEscapeString(domain))
}

// recipientsHTML is recipientList with each address as addrHTML.
func recipientsHTML(rs []quarantine.Recipient) template.HTML {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`<span class="addr">`)
		b.WriteString(string(addrHTML(r.Address)))
		b.WriteString("</span>")
	}
	return template.HTML(b.String())
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func percent(count, threshold int) int {
	if threshold <= 0 {
		return 0
	}
	return min(100, count*100/threshold)
}

func recipientList(rs []quarantine.Recipient) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Address)
	}
	return strings.Join(out, ", ")
}

// lockLink is the confirmation page for locking kind/domain/name,
// prompted by message tx, returning to back.
func lockLink(kind, domain, name, tx, back string) string {
	v := url.Values{"kind": {kind}, "domain": {domain}, "name": {name}}
	if tx != "" {
		v.Set("tx", tx)
	}
	if back != "" {
		v.Set("back", back)
	}
	return "/lock?" + v.Encode()
}

// segment is a piece of text, with Link set for a log id in it.
type segment struct {
	Text, Link string
}

// campaignIDLen is the length of a campaign id (docs/campaigns.md).
const campaignIDLen = 16

// idSegments splits s so that the log ids in it (26 characters of
// Crockford base32) can be rendered as links to the messages, and the
// campaign ids named as "campaign ID" (a campaign lock's reason) as links
// to the campaigns.
func idSegments(s string) []segment {
	var out []segment
	start := 0
	for i := 0; i < len(s); {
		if j := i + len("campaign "); strings.HasPrefix(s[i:], "campaign ") && (i == 0 || !isB32(s[i-1])) &&
			j+campaignIDLen <= len(s) && allB32(s[j:j+campaignIDLen]) && (j+campaignIDLen == len(s) || !isB32(s[j+campaignIDLen])) {
			out = append(out, segment{Text: s[start:j]})
			out = append(out, segment{Text: s[j : j+campaignIDLen], Link: campaignURL(s[j : j+campaignIDLen])})
			i = j + campaignIDLen
			start = i
			continue
		}
		if i+quarantine.IDLen > len(s) {
			i++
			continue
		}
		if (i == 0 || !isB32(s[i-1])) && allB32(s[i:i+quarantine.IDLen]) && (i+quarantine.IDLen == len(s) || !isB32(s[i+quarantine.IDLen])) {
			if id, err := quarantine.ParseID(s[i : i+quarantine.IDLen]); err == nil {
				if start < i {
					out = append(out, segment{Text: s[start:i]})
				}
				out = append(out, segment{Text: id, Link: "/log/" + id})
				i += quarantine.IDLen
				start = i
				continue
			}
		}
		i++
	}
	if start < len(s) {
		out = append(out, segment{Text: s[start:]})
	}
	return out
}

func isB32(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')
}

func allB32(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isB32(s[i]) {
			return false
		}
	}
	return true
}

// icons: text symbols next to words, so that no state is told by colour
// alone.
func statusIcon(s quarantine.Status) string {
	switch s {
	case quarantine.StatusAccepted:
		return "✓"
	case quarantine.StatusQuarantined:
		return "⊘"
	case quarantine.StatusReleased:
		return "↗"
	case quarantine.StatusRejected:
		return "✗"
	case quarantine.StatusDeferred:
		return "↻"
	}
	return "!"
}

func verdictIcon(v quarantine.Verdict) string {
	switch v {
	case quarantine.VerdictClean:
		return "○"
	case quarantine.VerdictSpam:
		return "◆"
	case quarantine.VerdictPhishing:
		return "⚑"
	case quarantine.VerdictVirus:
		return "☣"
	}
	return "–"
}

// band is the record's band, "" for a record refused before
// classification, which has none.
func band(r *quarantine.Record) string {
	if r.Verdict == quarantine.VerdictNone {
		return ""
	}
	return r.Band.String()
}

func bandIcon(b string) string {
	switch b {
	case "clean":
		return "○"
	case "suspect":
		return "◐"
	case "spam":
		return "●"
	}
	return "–"
}

// dict builds a map from key, value pairs, to pass several values to a
// sub-template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
