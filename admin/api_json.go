package admin

import (
	"time"

	"github.com/outguard/outguard/quarantine"
)

// MessageJSON is a message log record as the API returns it.
type MessageJSON struct {
	ID         string          `json:"id"`
	Time       time.Time       `json:"time"`
	Listener   string          `json:"listener,omitempty"`
	ClientIP   string          `json:"client_ip,omitempty"`
	ClientPort uint16          `json:"client_port,omitempty"`
	User       string          `json:"user"`
	Domain     string          `json:"domain"`
	Identity   string          `json:"identity"`
	Sender     string          `json:"sender"`
	Recipients []RecipientJSON `json:"recipients"`
	HeaderFrom string          `json:"header_from,omitempty"`
	Subject    string          `json:"subject"`
	MessageID  string          `json:"message_id,omitempty"`
	Size       int64           `json:"size"`
	Status     string          `json:"status"`
	Verdict    string          `json:"verdict"`
	Score      float64         `json:"score"`
	Reasons    []string        `json:"reasons"`
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
	Quarantine *QuarantineJSON `json:"quarantine,omitempty"`
}

// RecipientJSON is one envelope recipient and the reply it got.
type RecipientJSON struct {
	Address string `json:"address"`
	Code    int    `json:"code,omitempty"`
	Text    string `json:"text,omitempty"`
	Refused bool   `json:"refused,omitempty"`
}

// QuarantineJSON is the state of a quarantined message's content.
type QuarantineJSON struct {
	RawSize    int64     `json:"raw_size"`
	StoredSize int64     `json:"stored_size"`
	HasContent bool      `json:"has_content"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	ReleasedBy string    `json:"released_by,omitempty"`
	DeletedAt  time.Time `json:"deleted_at,omitzero"`
	DeletedBy  string    `json:"deleted_by,omitempty"`
	Expired    bool      `json:"expired,omitempty"`
}

func messageJSON(r *quarantine.Record) MessageJSON {
	m := MessageJSON{
		ID: r.ID, Time: r.Time.UTC(), Listener: r.Listener, ClientPort: r.ClientPort,
		User: r.User, Domain: r.Domain, Identity: r.Identity, Sender: r.Sender,
		Recipients: []RecipientJSON{}, HeaderFrom: r.HeaderFrom, Subject: r.Subject, MessageID: r.MessageID,
		Size: r.Size, Status: r.Status.String(), Verdict: r.Verdict.String(), Score: r.Score,
		Reasons: append([]string{}, r.Reasons...), NextHopReply: r.NextHopReply,
		DurationMS: r.Duration.Milliseconds(), Complaints: r.Complaints,
		Band: r.Band.String(), Model: r.Model, Learned: r.Learned,
		PartiallyScanned: append([]string(nil), r.Partial...),
		Campaign:         r.Campaign,
	}
	if r.ClientIP.IsValid() {
		m.ClientIP = r.ClientIP.String()
	}
	for _, rc := range r.Recipients {
		m.Recipients = append(m.Recipients, RecipientJSON{Address: rc.Address, Code: rc.Code, Text: rc.Text, Refused: rc.Refused})
	}
	if q := r.Quarantine; q != nil {
		m.Quarantine = &QuarantineJSON{RawSize: q.RawSize, StoredSize: q.StoredSize, HasContent: q.HasContent(),
			ReleasedAt: q.ReleasedAt, ReleasedBy: q.ReleasedBy, DeletedAt: q.DeletedAt, DeletedBy: q.DeletedBy, Expired: q.Expired}
	}
	return m
}

// SearchResponse is the answer of GET /api/v1/messages.
type SearchResponse struct {
	Messages []MessageJSON `json:"messages"`
	// NextCursor continues the search (pass it as cursor with the same
	// query); "" when there is nothing more.
	NextCursor string `json:"next_cursor,omitempty"`
	// Partial is set when the search stopped at its scan bound.
	Partial bool `json:"partial,omitempty"`
}

// MessageDetail is the answer of GET /api/v1/messages/{id}: the record
// and, while its content is stored, the header and a safe text body.
type MessageDetail struct {
	Message MessageJSON `json:"message"`
	// Content is set when the quarantined content is still stored.
	Content *ContentJSON `json:"content,omitempty"`
}

// ContentJSON is the parsed, display-safe rendering of a quarantined
// message.
type ContentJSON struct {
	Header    []HeaderJSON `json:"header"`
	Body      string       `json:"body"`
	BodyType  string       `json:"body_type,omitempty"`
	Truncated bool         `json:"truncated,omitempty"`
	Parts     []PartJSON   `json:"parts"`
}

// HeaderJSON is one header field.
type HeaderJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PartJSON is one MIME leaf part.
type PartJSON struct {
	Type     string `json:"type"`
	Filename string `json:"filename,omitempty"`
	Size     int64  `json:"size"`
}

func contentJSON(v *quarantine.View) *ContentJSON {
	c := &ContentJSON{Header: []HeaderJSON{}, Body: v.Body, BodyType: v.BodyType, Truncated: v.Truncated, Parts: []PartJSON{}}
	for _, h := range v.Header {
		c.Header = append(c.Header, HeaderJSON{Name: h.Name, Value: h.Value})
	}
	for _, p := range v.Parts {
		c.Parts = append(c.Parts, PartJSON{Type: p.Type, Filename: p.Filename, Size: p.Size})
	}
	return c
}

// ReleaseResponse is the answer of a release.
type ReleaseResponse struct {
	ID         string    `json:"id"`
	ReleasedAt time.Time `json:"released_at"`
	ReleasedBy string    `json:"released_by"`
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
	GroupBy        string          `json:"group_by"`
	Classification string          `json:"classification"`
	From           time.Time       `json:"from"`
	To             time.Time       `json:"to"`
	Rows           []ReportRowJSON `json:"rows"`
}

// ReportRowJSON is one group of a report. Key is the identity, user,
// sender or domain; "" counts mail without one.
type ReportRowJSON struct {
	Domain string `json:"domain"`
	Key    string `json:"key"`
	Count  int64  `json:"count"`
	// Locked is true, for identity and user groups, when the group's
	// identity or user is locked now; always present.
	Locked bool `json:"locked"`
}
