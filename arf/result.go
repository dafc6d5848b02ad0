package arf

import "time"

// Result is the JSON shape of one parsed (or refused) report, printed
// verbatim by `outguard arf parse --json` and returned by the feedback API.
// Every key is always present; lists are [] rather than null.
type Result struct {
	File string `json:"file"`
	OK   bool   `json:"ok"`
	// Error is "" on success, else one reason code: not-arf,
	// no-feedback-report, missing-feedback-type, limit-exceeded,
	// malformed-conflicting-dates or unreadable.
	Error string `json:"error"`
	// Detail explains Error in words; omitted on success.
	Detail           string   `json:"detail,omitempty"`
	Warnings         []string `json:"warnings"`
	Profile          string   `json:"profile"`
	FeedbackType     string   `json:"feedback_type"`
	Version          string   `json:"version"`
	UserAgent        string   `json:"user_agent"`
	OriginalMailFrom string   `json:"original_mail_from"`
	OriginalRcptTo   []string `json:"original_rcpt_to"`
	// ArrivalDate is RFC 3339 in UTC, "" when unknown.
	ArrivalDate string `json:"arrival_date"`
	// SourceIP is canonical, "" when missing or unreadable.
	SourceIP       string   `json:"source_ip"`
	SourcePort     int      `json:"source_port"`
	ReportedDomain []string `json:"reported_domain"`
	ReportedURI    []string `json:"reported_uri"`
	Incidents      int      `json:"incidents"`
	MessageID      string   `json:"message_id"`
	Identity       string   `json:"identity"`
}

// NewResult builds the Result of Parse's return values for file.
func NewResult(file string, fb *Feedback, err error) Result {
	r := Result{File: file, Warnings: []string{}, OriginalRcptTo: []string{}, ReportedDomain: []string{}, ReportedURI: []string{}}
	if err != nil {
		r.Error = ErrorCode(err)
		r.Detail = err.Error()
		return r
	}
	if fb == nil {
		r.Error = ErrUnreadable.Error()
		return r
	}
	r.OK = true
	r.Warnings = append(r.Warnings, fb.Warnings...)
	r.Profile = fb.Profile
	r.FeedbackType = fb.FeedbackType
	r.Version = fb.Version
	r.UserAgent = fb.UserAgent
	r.OriginalMailFrom = fb.OriginalMailFrom
	r.OriginalRcptTo = append(r.OriginalRcptTo, fb.OriginalRcptTo...)
	if !fb.ArrivalDate.IsZero() {
		r.ArrivalDate = fb.ArrivalDate.UTC().Format(time.RFC3339)
	}
	if fb.SourceIP.IsValid() {
		r.SourceIP = fb.SourceIP.String()
	}
	r.SourcePort = fb.SourcePort
	r.ReportedDomain = append(r.ReportedDomain, fb.ReportedDomain...)
	r.ReportedURI = append(r.ReportedURI, fb.ReportedURI...)
	r.Incidents = fb.Incidents
	r.MessageID = fb.MessageID
	r.Identity = fb.Identity
	return r
}

// Result returns f's Result for file.
func (f *Feedback) Result(file string) Result { return NewResult(file, f, nil) }
