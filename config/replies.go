package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Replies holds the texts of outguard's refusals (docs/replies.md): the
// global ones under replies, and each administrative domain's under
// domains[].replies, key by key over the global ones. A template changes
// the text only: the reply code, its enhanced status code and the
// verdict tag ([OG-LOCKED], ...) stay as docs/replies.md lists them.
// Empty keys keep the built-in texts, which never name the outgoing user
// or the identity.
type Replies struct {
	// SupportURL is what {support_url} stands for, e.g. a page of the
	// provider's help desk.
	SupportURL string `yaml:"support_url"`
	// LockedUser is the refusal at MAIL of a locked outgoing user.
	LockedUser string `yaml:"locked_user"`
	// LockedIdentity is the refusal after DATA of a locked identity.
	LockedIdentity string `yaml:"locked_identity"`
	// Blocked is the refusal of a message classified spam, phishing or
	// virus; {class} names the class.
	Blocked string `yaml:"blocked"`
	// NoIdentity is the refusal of a message without identity when
	// require_identity is set.
	NoIdentity string `yaml:"no_identity"`
	// Unscannable is the refusal (or deferral) by the unscannable policy;
	// {limits} names what could not be scanned.
	Unscannable string `yaml:"unscannable"`
}

// Reply template names, the keys of Replies.
const (
	ReplyLockedUser     = "locked_user"
	ReplyLockedIdentity = "locked_identity"
	ReplyBlocked        = "blocked"
	ReplyNoIdentity     = "no_identity"
	ReplyUnscannable    = "unscannable"
)

// MaxReplyTemplate bounds a template, so that a rendered reply stays well
// inside the 512 octets RFC 5321 (4.5.3.1.5) allows a reply line.
const MaxReplyTemplate = 300

// replyPlaceholders lists the placeholders every template may use, and
// those of one template only.
var (
	commonPlaceholders = []string{"txid", "support_url", "domain", "hostname"}
	extraPlaceholders  = map[string][]string{
		ReplyBlocked:     {"class"},
		ReplyUnscannable: {"limits"},
	}
)

// Placeholders returns the placeholders template name may use.
func Placeholders(name string) []string {
	return append(slices.Clone(commonPlaceholders), extraPlaceholders[name]...)
}

// Templates returns the templates set in r by name; unset ones are left
// out.
func (r *Replies) Templates() map[string]string {
	out := map[string]string{}
	for name, v := range map[string]string{
		ReplyLockedUser: r.LockedUser, ReplyLockedIdentity: r.LockedIdentity,
		ReplyBlocked: r.Blocked, ReplyNoIdentity: r.NoIdentity, ReplyUnscannable: r.Unscannable,
	} {
		if v != "" {
			out[name] = v
		}
	}
	return out
}

// Merge returns r with the keys over sets replaced (a domain's replies
// over the global ones). A nil over returns r.
func (r Replies) Merge(over *Replies) Replies {
	if over == nil {
		return r
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&r.SupportURL, over.SupportURL)
	set(&r.LockedUser, over.LockedUser)
	set(&r.LockedIdentity, over.LockedIdentity)
	set(&r.Blocked, over.Blocked)
	set(&r.NoIdentity, over.NoIdentity)
	set(&r.Unscannable, over.Unscannable)
	return r
}

// ReplyTemplate is a parsed reply text: literal parts and placeholders.
type ReplyTemplate struct {
	parts []templatePart
}

type templatePart struct {
	text string
	name string // a placeholder when set
}

// ParseReplyTemplate parses s, where {name} is a placeholder from allowed
// and {{ and }} are literal braces.
func ParseReplyTemplate(s string, allowed []string) (ReplyTemplate, error) {
	var t ReplyTemplate
	if len(s) > MaxReplyTemplate {
		return t, fmt.Errorf("%d characters: keep it under %d, a reply line is short", len(s), MaxReplyTemplate)
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return t, fmt.Errorf("character %q: use printable ASCII only (SMTP replies are ASCII, one line)", r)
		}
	}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "{{"), strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte(s[i])
			i++
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, fmt.Errorf("unclosed {: write a placeholder as {name}, a literal brace as {{")
			}
			name := s[i+1 : i+end]
			if !slices.Contains(allowed, name) {
				return t, fmt.Errorf("unknown placeholder {%s}: use %s", name, listPlaceholders(allowed))
			}
			if lit.Len() > 0 {
				t.parts = append(t.parts, templatePart{text: lit.String()})
				lit.Reset()
			}
			t.parts = append(t.parts, templatePart{name: name})
			i += end
		case s[i] == '}':
			return t, fmt.Errorf("a lone }: write a literal brace as }}")
		default:
			lit.WriteByte(s[i])
		}
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, templatePart{text: lit.String()})
	}
	return t, nil
}

func listPlaceholders(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "{" + n + "}"
	}
	return strings.Join(out, ", ")
}

// Uses reports whether the template has placeholder name.
func (t ReplyTemplate) Uses(name string) bool {
	for _, p := range t.parts {
		if p.name == name {
			return true
		}
	}
	return false
}

// Render fills the placeholders with value's answers.
func (t ReplyTemplate) Render(value func(name string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name != "" {
			b.WriteString(value(p.name))
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// validate checks the templates of one replies section; where names it.
func (r *Replies) validate(where string, merged Replies) []string {
	var out []string
	if u := r.SupportURL; u != "" {
		p, err := url.Parse(u)
		switch {
		case len(u) > 200 || strings.ContainsAny(u, " \t\r\n") || strings.ContainsFunc(u, func(c rune) bool { return c > 0x7e }):
			out = append(out, fmt.Sprintf("%s.support_url %q: use an ASCII URL without spaces, under 200 characters", where, u))
		case err != nil || (p.Scheme != "https" && p.Scheme != "http" && p.Scheme != "mailto") || (p.Scheme != "mailto" && p.Host == ""):
			out = append(out, fmt.Sprintf("%s.support_url %q: use an https:// (or http://, mailto:) URL", where, u))
		}
	}
	for name, text := range r.Templates() {
		t, err := ParseReplyTemplate(text, Placeholders(name))
		if err != nil {
			out = append(out, fmt.Sprintf("%s.%s: %v", where, name, err))
			continue
		}
		if t.Uses("support_url") && merged.SupportURL == "" {
			out = append(out, fmt.Sprintf("%s.%s: uses {support_url}: set replies.support_url (or this domain's)", where, name))
		}
	}
	slices.Sort(out)
	return out
}
