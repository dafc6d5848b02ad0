package arf

import (
	"mime"
	"strings"
)

// HeaderGetter is what the loop checks need of a header: net/textproto's
// MIMEHeader, net/mail's Header and go-message's *textproto.Header all
// have it.
type HeaderGetter interface {
	Get(key string) string
}

// IsFeedbackReport reports whether the header announces a feedback report
// (multipart/report; report-type=feedback-report, or a lone
// message/feedback-report).
func IsFeedbackReport(h HeaderGetter) bool {
	ct := h.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		e := &entity{fields: []field{{name: "Content-Type", value: ct}}}
		mt, params = e.mediaType()
	}
	mt = strings.ToLower(mt)
	return mt == "message/feedback-report" ||
		(mt == "multipart/report" && strings.EqualFold(strings.TrimSpace(params["report-type"]), "feedback-report"))
}

// IsAutoSubmitted reports whether the header has an Auto-Submitted field
// with a value other than "no" (RFC 3834).
func IsAutoSubmitted(h HeaderGetter) bool {
	v := strings.TrimSpace(h.Get("Auto-Submitted"))
	if v == "" {
		return false
	}
	kw, _, _ := strings.Cut(v, ";")
	return !strings.EqualFold(strings.TrimSpace(kw), "no")
}

// SkipReason says why a message must not be reported, or is "" when it may
// be. Outguard never reports a report: a message that is itself a feedback
// report, an automatically submitted message from the null sender (a
// report or bounce), or mail to one of its own feedback addresses is not
// reported, whatever its verdict.
//
// mailFrom is the envelope sender ("" for <>), rcptTo the envelope
// recipients, feedbackAddrs the addresses outguard accepts feedback at.
func SkipReason(mailFrom string, rcptTo []string, h HeaderGetter, feedbackAddrs []string) string {
	if IsFeedbackReport(h) {
		return "the message is a feedback report"
	}
	if strings.TrimSpace(stripAngles(mailFrom)) == "" && IsAutoSubmitted(h) {
		return "the message is automatically submitted from the null sender"
	}
	for _, r := range rcptTo {
		r = stripAngles(r)
		for _, f := range feedbackAddrs {
			if f != "" && strings.EqualFold(r, strings.TrimSpace(f)) {
				return "the message is addressed to the feedback address " + f
			}
		}
	}
	return ""
}
