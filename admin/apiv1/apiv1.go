// Package apiv1 holds the JSON shapes of the admin API, version 1
// (docs/api.md): the requests the API reads and the replies it writes.
// The API server (admin/api) and the command-line client (cmd/outguard)
// both import it; nothing else belongs here.
//
// These are wire types, not domain types: no type of identity, arf,
// quarantine or any other package is embedded in them, so that renaming a
// field of a domain type cannot change the API. The server converts
// explicitly (admin/api's convert.go, tested field by field), and the
// golden files of admin/api (testdata/golden) pin every endpoint's reply.
package apiv1

import (
	"fmt"
	"time"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1/"

// ErrorBody is the JSON document of every error response:
// {"error":{"code":"bad_request","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody. Code is stable and meant for
// scripts; Message is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Message is a message log record.
type Message struct {
	ID         string      `json:"id"`
	Time       time.Time   `json:"time"`
	Listener   string      `json:"listener,omitempty"`
	ClientIP   string      `json:"client_ip,omitempty"`
	ClientPort uint16      `json:"client_port,omitempty"`
	User       string      `json:"user"`
	Domain     string      `json:"domain"`
	Identity   string      `json:"identity"`
	Sender     string      `json:"sender"`
	Recipients []Recipient `json:"recipients"`
	HeaderFrom string      `json:"header_from,omitempty"`
	Subject    string      `json:"subject"`
	MessageID  string      `json:"message_id,omitempty"`
	Size       int64       `json:"size"`
	// Status is accepted, quarantined, rejected, deferred or failed.
	Status string `json:"status"`
	// Verdict is clean, spam, phishing, virus or none.
	Verdict string   `json:"verdict"`
	Score   float64  `json:"score"`
	Reasons []string `json:"reasons"`
	// Band is clean, suspect or spam (blocking).
	Band string `json:"band"`
	// Model is the content model version that judged the message.
	Model string `json:"model,omitempty"`
	// Learned is spam or ham once an operator taught the model with the
	// message.
	Learned string `json:"learned,omitempty"`
	// PartiallyScanned names the limits that left content unscanned
	// (e.g. max_depth, archive_encrypted); absent when the engines saw
	// the whole message.
	PartiallyScanned []string `json:"partially_scanned,omitempty"`
	// Campaign is the id of the message's campaign (the same content
	// from many identities, docs/campaigns.md).
	Campaign     string `json:"campaign,omitempty"`
	NextHopReply string `json:"next_hop_reply,omitempty"`
	DurationMS   int64  `json:"duration_ms"`
	Complaints   int    `json:"complaints,omitempty"`
	// Quarantine is set for quarantined transactions.
	Quarantine *Quarantine `json:"quarantine,omitempty"`
}

// Recipient is one envelope recipient and the reply it got.
type Recipient struct {
	Address string `json:"address"`
	Code    int    `json:"code,omitempty"`
	Text    string `json:"text,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

// Quarantine is the state of a quarantined message's content.
type Quarantine struct {
	RawSize    int64     `json:"raw_size"`
	StoredSize int64     `json:"stored_size"`
	HasContent bool      `json:"has_content"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
	// ReleaseReason is the reason given with the release; ReleaseLearn
	// is set when the release asked to teach the content model the
	// message as ham (whether it did: the message's learned).
	ReleaseReason string    `json:"release_reason,omitempty"`
	ReleaseLearn  bool      `json:"release_learn,omitempty"`
	DeletedAt     time.Time `json:"deleted_at,omitzero"`
	DeletedBy     string    `json:"deleted_by,omitempty"`
	Expired       bool      `json:"expired,omitempty"`
}

// SearchResponse is the answer of GET /api/v1/messages.
type SearchResponse struct {
	Messages []Message `json:"messages"`
	// NextCursor continues the search (pass it as cursor with the same
	// query); "" when there is nothing more.
	NextCursor string `json:"next_cursor,omitempty"`
	// Partial is set when the search stopped at its scan bound.
	Partial bool `json:"partial,omitempty"`
}

// MessageDetail is the answer of GET /api/v1/messages/{id}: the record
// and, while its content is stored, the header and a safe text body.
type MessageDetail struct {
	Message Message `json:"message"`
	// Content is set when the quarantined content is still stored.
	Content *Content `json:"content,omitempty"`
}

// Content is the parsed, display-safe rendering of a quarantined message.
type Content struct {
	Header    []Header `json:"header"`
	Body      string   `json:"body"`
	BodyType  string   `json:"body_type,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Parts     []Part   `json:"parts"`
}

// Header is one header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Part is one MIME leaf part.
type Part struct {
	Type     string `json:"type"`
	Filename string `json:"filename,omitempty"`
	Size     int64  `json:"size"`
}

// ActionRequest is the optional body of a release or a deletion.
type ActionRequest struct {
	Reason string `json:"reason"`
}

// ReleaseRequest is the optional body of a release.
type ReleaseRequest struct {
	// Reason says why, for the audit trail (one line).
	Reason string `json:"reason"`
	// Learn teaches the content model that the message is ham ("release
	// and don't block this kind again"); absent means true, as before
	// the field existed. False releases without teaching.
	Learn *bool `json:"learn,omitempty"`
}

// ReleaseResponse is the answer of a release.
type ReleaseResponse struct {
	ID         string    `json:"id"`
	ReleasedAt time.Time `json:"released_at"`
	ReleasedBy string    `json:"released_by"`
	// ReleaseReason is the reason recorded with the release (the first
	// one's, when Already).
	ReleaseReason string `json:"release_reason,omitempty"`
	// Already is set when the message had been released before and was
	// not delivered again.
	Already bool `json:"already"`
	// Learned says what teaching the content model that the message is
	// ham did; absent when it taught nothing (learning off, or already
	// released).
	Learned *LearnResult `json:"learned,omitempty"`
}

// DeleteResponse is the answer of a deletion.
type DeleteResponse struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
	// Already is true when the content had been deleted before: the
	// request changed nothing (DeletedAt and DeletedBy say when and by
	// whom), as a second release does.
	Already   bool      `json:"already"`
	DeletedAt time.Time `json:"deleted_at,omitzero"`
	DeletedBy string    `json:"deleted_by,omitempty"`
}

// ReportResponse is the answer of GET /api/v1/reports.
type ReportResponse struct {
	GroupBy        string      `json:"group_by"`
	Classification string      `json:"classification"`
	From           time.Time   `json:"from"`
	To             time.Time   `json:"to"`
	Rows           []ReportRow `json:"rows"`
}

// ReportRow is one group of a report. Key is the identity, user, sender
// or domain; "" counts mail without one.
type ReportRow struct {
	Domain string `json:"domain"`
	Key    string `json:"key"`
	Count  int64  `json:"count"`
	// Locked is true, for identity and user groups, when the group's
	// identity or user is locked now; always present.
	Locked bool `json:"locked"`
}

// ParseTime parses a time parameter of the API (from, to): RFC 3339, or a
// UTC date and time without zone ("2026-03-01T12:00", "2026-03-01
// 12:00"), or a UTC date. The server and the CLI share it so that the CLI
// refuses what the server would.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2026-03-01T12:00:00Z) or a UTC date (2026-03-01)", s)
}
