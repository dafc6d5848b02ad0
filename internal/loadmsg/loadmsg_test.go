package loadmsg

import (
	"bytes"
	"testing"
)

func TestMessage(t *testing.T) {
	for _, size := range []int{0, 200, 5 << 10, 50 << 10} {
		m := Message(size)
		if size >= 200 && len(m) != size {
			t.Errorf("Message(%d) has %d bytes", size, len(m))
		}
		if !bytes.HasSuffix(m, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("Message(%d) has a line not ended by CRLF", size)
		}
		if b := Body(size); !bytes.HasSuffix(m, b) || bytes.Contains(b, []byte("Subject:")) {
			t.Errorf("Body(%d) is not the text after the header", size)
		}
	}
}
