package arf

import (
	"bufio"
	"bytes"
	"fmt"
)

func fmtAny(v any) string { return fmt.Sprint(v) }

func newBufReader(b []byte) *bufio.Reader {
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		b = append(append([]byte(nil), b...), "\r\n"...)
	}
	return bufio.NewReader(bytes.NewReader(b))
}
