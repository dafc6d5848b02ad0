package arf

import "errors"

// Sentinel errors returned by Parse. Each one's text is the stable reason
// code printed by `outguard arf parse` and the feedback API; the error
// returned wraps it with details ("not-arf: ...").
var (
	// ErrNotARF: the message is not a feedback report: a plain message, a
	// delivery status notification (report-type=delivery-status) or another
	// kind of report, and no known legacy complaint format.
	ErrNotARF = errors.New("not-arf")
	// ErrNoFeedbackReport: a multipart/report with report-type
	// feedback-report but no message/feedback-report part.
	ErrNoFeedbackReport = errors.New("no-feedback-report")
	// ErrMissingFeedbackType: the feedback-report part has no
	// Feedback-Type field.
	ErrMissingFeedbackType = errors.New("missing-feedback-type")
	// ErrLimitExceeded: the input is larger, deeper or has more parts or
	// longer or more header fields than Options allow.
	ErrLimitExceeded = errors.New("limit-exceeded")
	// ErrConflictingDates: the report carries two arrival dates that
	// disagree (Arrival-Date twice, or Arrival-Date and the older
	// Received-Date).
	ErrConflictingDates = errors.New("malformed-conflicting-dates")
	// ErrUnreadable: the input could not be read or its MIME structure is
	// broken beyond repair (a multipart without a boundary, a read error).
	ErrUnreadable = errors.New("unreadable")
)

var codes = []error{ErrNotARF, ErrNoFeedbackReport, ErrMissingFeedbackType, ErrLimitExceeded, ErrConflictingDates, ErrUnreadable}

// ErrorCode returns the reason code of an error returned by Parse ("not-arf",
// "no-feedback-report", "missing-feedback-type", "limit-exceeded",
// "malformed-conflicting-dates", "unreadable"), "" for nil, and "unreadable"
// for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return ErrUnreadable.Error()
}
