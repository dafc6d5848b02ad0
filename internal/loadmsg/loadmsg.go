// Package loadmsg is the message cmd/outguard-load sends, which
// bench/relay.sh measures; the stage benchmarks of filter and campaign
// read the same message, so that their figures are those of the relay
// table (bench/README.md).
package loadmsg

import "bytes"

// Message returns a plain-text message of about size bytes (at least its
// header) with CRLF lines: a fixed header, then one line of English text
// repeated, the last line padded to size.
func Message(size int) []byte {
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString("From: load@out.example.net\r\nTo: sink@example.org\r\nSubject: load test\r\nMessage-ID: <load@outguard-load>\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog 0123456789 abcdefghij.\r\n"
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// Body returns the text of Message(size) after its header.
func Body(size int) []byte {
	m := Message(size)
	return m[bytes.Index(m, []byte("\r\n\r\n"))+4:]
}
