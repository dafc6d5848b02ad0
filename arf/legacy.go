package arf

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
)

// Legacy complaint formats, recognised only from the senders that
// documented them:
//
//   - Microsoft JMRP, "RFC822 Attachment" format: a message from
//     staff@hotmail.com whose attachment is the complained-about message as
//     message/rfc822; the recipient, when given, is in the attached
//     message's X-HmXmrOriginalRecipient header. Microsoft moved JMRP to
//     ARF, but old-format reports still arrive from some enrolments.
//     The source IP of the complained-about message is given only in the
//     report's Subject, "complaint about message from <IP>".
//   - AOL before 2 September 2008 ("scomp", RFC 6449 appendix A.1): from
//     scomp@aol.net or marked "X-Loop: scomp", subject "Client TOS
//     Notification", a multipart/mixed with one empty text part and the
//     complained-about message as message/rfc822, the AOL recipient
//     redacted.
//
// Both carry no machine-readable part, so the feedback type is taken to be
// abuse (what the user's "this is spam" click means) and a warning says so.

// forwarded handles a multipart that is not a multipart/report: a report
// forwarded as an attachment, or a legacy complaint.
func (p *parser) forwarded(top *entity, params map[string]string, depth int) (*Feedback, error) {
	parts, err := p.children(top, params, depth)
	if err != nil {
		return nil, err
	}
	var attached []*entity
	for _, e := range parts {
		if mt, _ := e.mediaType(); mt == "message/rfc822" {
			attached = append(attached, e)
		}
	}
	// A feedback report forwarded as an attachment (by a person or a
	// ticket system, perhaps more than once) is read from the attachment.
	// An attachment over the limits is a hostile report, unless it is
	// the original of a legacy complaint, whose oversized fields are
	// skipped like those of any original: so the limit error waits for
	// the legacy check.
	var limitErr error
	for _, e := range parts {
		mt, _ := e.mediaType()
		var fb *Feedback
		var err error
		switch {
		case mt == "message/rfc822":
			body, _ := e.decodedBody()
			fb, err = p.message(body, depth+1)
		case strings.HasPrefix(mt, "multipart/"):
			fb, err = p.dispatch(e, depth+1)
		default:
			continue
		}
		switch {
		case err == nil:
			if fb.Profile == ProfileARF {
				fb.Warnings = append([]string{"feedback report forwarded as an attachment; read from the attachment"}, fb.Warnings...)
				return fb, nil
			}
		case errors.Is(err, ErrLimitExceeded):
			if limitErr == nil {
				limitErr = err
			}
		}
	}
	profile := legacyProfile(top, attached, p)
	if profile == "" {
		if limitErr != nil {
			return nil, limitErr
		}
		return nil, fmt.Errorf("%w: a multipart message without a message/feedback-report part from no known legacy complaint sender", ErrNotARF)
	}
	fb := &Feedback{Profile: profile, FeedbackType: "abuse", Incidents: 1}
	switch profile {
	case ProfileJMRP:
		fb.warn("legacy Microsoft JMRP complaint (not ARF); feedback type taken as abuse")
		fb.UserAgent = "Microsoft JMRP (legacy format)"
		if raw, ok := jmrpSourceIP(top.get("Subject")); ok {
			fb.SourceIPRaw = raw
			if a, err := ParseSourceIP(raw); err == nil {
				fb.SourceIP = a
			} else {
				fb.warn("Subject names source %q, which is not an IP address", raw)
			}
		}
	case ProfileAOLSCOMP:
		fb.warn("legacy AOL feedback loop complaint (not ARF); feedback type taken as abuse")
		fb.UserAgent = "AOL SCOMP (legacy format)"
	}
	ok, err := p.original(fb, attached[0], depth+1)
	if err != nil {
		return nil, err
	}
	if !ok || !fb.HasOriginal {
		return nil, fmt.Errorf("%w: legacy complaint without the complained-about message", ErrNotARF)
	}
	if rcpt := fb.Header.Get("X-HmXmrOriginalRecipient"); rcpt != "" {
		fb.OriginalRcptTo = append(fb.OriginalRcptTo, stripAngles(rcpt))
	}
	if rp := fb.Header.Get("Return-Path"); rp != "" {
		fb.OriginalMailFrom = stripAngles(rp)
	}
	if from, err := mail.ParseAddress(fb.Header.Get("From")); err == nil {
		if _, d, ok := strings.Cut(from.Address, "@"); ok {
			fb.ReportedDomain = append(fb.ReportedDomain, strings.ToLower(d))
		}
	}
	return fb, nil
}

// legacyProfile names the legacy format of a non-report multipart, or "".
func legacyProfile(top *entity, attached []*entity, p *parser) string {
	if len(attached) != 1 {
		return ""
	}
	from := strings.ToLower(top.get("From"))
	if a, err := mail.ParseAddress(top.get("From")); err == nil {
		from = strings.ToLower(a.Address)
	}
	switch {
	case from == "staff@hotmail.com":
		return ProfileJMRP
	case from == "scomp@aol.net", hasLoop(top, "scomp"):
		if mt, _ := top.mediaType(); mt == "multipart/mixed" {
			return ProfileAOLSCOMP
		}
		return ""
	}
	// Without the documented sender, only the JMRP marker header in the
	// attached message identifies the format.
	body, _ := attached[0].decodedBody()
	h, _ := splitHeader(body)
	fs, _, _, err := parseFieldsSkipping(h, p.lim)
	if err == nil {
		e := entity{fields: fs}
		if e.get("X-HmXmrOriginalRecipient") != "" {
			return ProfileJMRP
		}
	}
	return ""
}

// hasLoop reports whether e carries an X-Loop field with the value want
// (any case).
func hasLoop(e *entity, want string) bool {
	for _, f := range e.fields {
		if strings.EqualFold(f.name, "X-Loop") && strings.EqualFold(strings.TrimSpace(f.value), want) {
			return true
		}
	}
	return false
}

// jmrpSourceIP returns what follows "complaint about message from" in a
// JMRP Subject, the only place the legacy format names the source.
func jmrpSourceIP(subject string) (string, bool) {
	const marker = "complaint about message from"
	s := strings.Join(strings.Fields(subject), " ")
	i := strings.Index(strings.ToLower(s), marker)
	if i < 0 {
		return "", false
	}
	rest := strings.TrimSpace(s[i+len(marker):])
	if rest == "" {
		return "", false
	}
	if j := strings.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}
