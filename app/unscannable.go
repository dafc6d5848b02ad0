package app

import (
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/outguard/outguard/config"
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/smtpd"
)

// unscannable applies the user's unscannable policy (docs/config-filter.md)
// to a verdict the engines reached without seeing the whole message. It
// returns filter.ActRelay for mail that was scanned whole, for mail the
// engines refuse anyway, and in monitor mode, which refuses nothing; for
// ActTempfail and ActBlock it also returns the reply.
func (c *check) unscannable(tx *smtpd.Transaction, v filter.Verdict) (filter.UnscannableAction, *smtp.SMTPError) {
	if !v.Partial() {
		return filter.ActRelay, nil
	}
	limits := strings.Join(filter.PartialLimits(v.Gaps), ", ")
	act := c.up.unscannable.Decide(v.Gaps)
	if v.Class != filter.Clean || c.up.policy.Monitor {
		act = filter.ActRelay
	}
	c.p.log.Info("message partially scanned", "tx", tx.ID, "limits", limits,
		"policy", orDefault(c.up.unscannable.String()), "action", actionName[act])
	switch act {
	case filter.ActTempfail:
		// Deferring for a property of the message that a retry cannot
		// change is wrong in general; the operator chose it here.
		return act, c.up.replies.refusal(config.ReplyUnscannable, 451, smtp.EnhancedCode{4, 7, 1}, "OG-UNSCANNABLE", tx.ID, true, map[string]string{"limits": limits})
	case filter.ActBlock:
		return act, c.up.replies.refusal(config.ReplyUnscannable, 550, smtp.EnhancedCode{5, 7, 1}, "OG-UNSCANNABLE", tx.ID, true, map[string]string{"limits": limits})
	}
	return act, nil
}

var actionName = map[filter.UnscannableAction]string{
	filter.ActRelay: "relay", filter.ActTempfail: "tempfail", filter.ActBlock: "block",
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
