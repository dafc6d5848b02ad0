package app

import "testing"

// TestTopFields reads the three logged fields with the shared header
// scanner: white space before the colon is allowed (RFC 5322 section
// 4.5.8), a name with other octets is not a field, later copies are
// ignored, and nothing past the header block is read.
func TestTopFields(t *testing.T) {
	raw := []byte("From\v: bad\r\nFrom : a@example.com\r\nSubject: hello\r\n  world \r\nSubject: second\r\n\r\nMessage-ID: <body@x>\r\n")
	from, subject, msgid := topFields(raw)
	if from != "a@example.com" || subject != "hello world" || msgid != "" {
		t.Fatalf("got %q %q %q", from, subject, msgid)
	}
}
