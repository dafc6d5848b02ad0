package apiv1

import "time"

// FeedbackResult is what ingesting one third-party feedback report did:
// the parsed report (the keys of `outguard arf parse --json`, with file
// set to the source) and its attribution. Every key of the parse result
// is present; identity is the attributed identity, not the report's
// header.
type FeedbackResult struct {
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
	// ID is the intake id under which the accepted report is stored.
	ID string `json:"id,omitempty"`
	// Attribution is how the report was attributed: trace-token,
	// message-id, identity-header or none.
	Attribution string `json:"attribution,omitempty"`
	// Attributed is set when the report was matched to a transaction or
	// an identity of outguard's users.
	Attributed bool   `json:"attributed"`
	TxID       string `json:"tx_id,omitempty"`
	User       string `json:"user,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Identity   string `json:"identity,omitempty"`
	// Counted is set when the complaint was counted toward automatic
	// locking; Locked when it triggered a lock. NotCounted says why it was
	// not: unlisted-reporter, not-attributed, identity-header-only,
	// no-identity, feedback-type or duplicate.
	Counted    bool   `json:"counted"`
	NotCounted string `json:"not_counted,omitempty"`
	Locked     bool   `json:"locked"`
	// Reporter is the arf.reporters entry the report came from, "" for
	// a report from no allow-listed feedback loop.
	Reporter string `json:"reporter"`
	// Duplicate is set when the same report was received before
	// (DuplicateOf is its id, and nothing was stored or counted), or the
	// same reporter already complained about the same transaction.
	Duplicate   bool   `json:"duplicate"`
	DuplicateOf string `json:"duplicate_of,omitempty"`
	// Received is when the daemon got the report.
	Received time.Time `json:"received,omitzero"`
	// Source is where the report came from: smtp:<client address>, or
	// the upload's source parameter.
	Source string `json:"source,omitempty"`
}

// FeedbackError is the answer (422) to an upload that is not a feedback
// report: the error, whose code is the parser's reason (e.g. not-arf),
// and the parse result.
type FeedbackError struct {
	Error  ErrorDetail    `json:"error"`
	Result FeedbackResult `json:"result"`
}

// FeedbackList is the answer of GET /api/v1/feedback: one page of stored
// feedback reports, newest first.
type FeedbackList struct {
	Reports []FeedbackResult `json:"reports"`
	// Next is the cursor for the next (older) page, "" at the end.
	Next string `json:"next"`
}

// ReloadResponse is the answer of a successful reload.
type ReloadResponse struct {
	Reloaded bool `json:"reloaded"`
}

// AuditTarget is what an audited action applied to.
type AuditTarget struct {
	// Kind is user, identity, message, feedback, upload, model, campaign
	// or config.
	Kind string `json:"kind"`
	// Domain is the administrative domain of the object ("" for
	// config-wide actions such as reload).
	Domain string `json:"domain,omitempty"`
	// Name is the user, the identity, or the message's log id.
	Name string `json:"name,omitempty"`
}

// AuditEntry is one administrative action, written after it succeeded.
type AuditEntry struct {
	// ID orders the trail; it increases with every entry.
	ID uint64    `json:"id"`
	At time.Time `json:"at"`
	// Actor is the token's name; Scope its scope ("all" or a domain).
	Actor  string      `json:"actor"`
	Scope  string      `json:"scope"`
	Action string      `json:"action"`
	Target AuditTarget `json:"target"`
	Reason string      `json:"reason,omitempty"`
	// Detail holds what else matters: a lock's duration, a release
	// already done, the feedback's attribution.
	Detail string `json:"detail,omitempty"`
	// Node is the node that recorded the entry (its node_name).
	Node string `json:"node,omitempty"`
}

// AuditList is the answer of GET /api/v1/audit.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
	// NextCursor continues the listing (pass it as cursor); "" at the
	// end.
	NextCursor string `json:"next_cursor,omitempty"`
}
