package app

import (
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
)

// builtinReplies are the refusal texts used where the configuration sets
// none (docs/replies.md). None names the outgoing user or the identity:
// the reply reaches the end user's bounce, and the account name is the
// provider's business.
var builtinReplies = map[string]string{
	config.ReplyLockedUser:     "sender is locked; contact your provider's abuse desk",
	config.ReplyLockedIdentity: "sender identity is locked; contact your provider's abuse desk",
	config.ReplyBlocked:        "message refused as {class}",
	config.ReplyNoIdentity:     "message refused: the end user behind it could not be identified",
	config.ReplyUnscannable:    "message refused: content could not be scanned ({limits})",
}

// builtinUnscannableDeferred is the built-in text of the unscannable
// policy's 451; a configured unscannable template serves both.
const builtinUnscannableDeferred = "message deferred: content could not be scanned ({limits})"

// replyTexts are the refusal texts of one administrative domain: its
// templates over the global ones over the built-in ones.
type replyTexts struct {
	templates  map[string]config.ReplyTemplate
	configured map[string]bool
	deferred   config.ReplyTemplate // the built-in unscannable 451
	supportURL string
	domain     string
	hostname   string
}

func newReplyTexts(r config.Replies, domain, hostname string) (*replyTexts, error) {
	rt := &replyTexts{templates: map[string]config.ReplyTemplate{}, configured: map[string]bool{},
		supportURL: r.SupportURL, domain: domain, hostname: hostname}
	set := r.Templates()
	for name, text := range builtinReplies {
		if v, ok := set[name]; ok {
			text = v
			rt.configured[name] = true
		}
		t, err := config.ParseReplyTemplate(text, config.Placeholders(name))
		if err != nil {
			return nil, fmt.Errorf("replies.%s: %w", name, err)
		}
		rt.templates[name] = t
	}
	d, err := config.ParseReplyTemplate(builtinUnscannableDeferred, config.Placeholders(config.ReplyUnscannable))
	if err != nil {
		return nil, err
	}
	rt.deferred = d
	return rt, nil
}

// defaultReplies are the built-in texts, for a user the configuration no
// longer has.
var defaultReplies = func() *replyTexts {
	rt, err := newReplyTexts(config.Replies{}, "", "")
	if err != nil {
		panic(err) // the built-in templates are constants
	}
	return rt
}()

// refusal renders template name into a reply. The code, the enhanced code
// and the tag are fixed by the caller (docs/replies.md); a template changes
// only the text. With withID, the reply ends with "(id TXID)" unless the
// template placed {txid} itself.
func (rt *replyTexts) refusal(name string, code int, ec smtp.EnhancedCode, tag, txid string, withID bool, vars map[string]string) *smtp.SMTPError {
	t := rt.templates[name]
	if name == config.ReplyUnscannable && code/100 == 4 && !rt.configured[name] {
		t = rt.deferred
	}
	text := t.Render(func(p string) string {
		switch p {
		case "txid":
			return txid
		case "support_url":
			return rt.supportURL
		case "domain":
			return rt.domain
		case "hostname":
			return rt.hostname
		}
		return vars[p]
	})
	msg := "[" + tag + "] " + text
	if withID && txid != "" && !t.Uses("txid") {
		msg += " (id " + txid + ")"
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}
