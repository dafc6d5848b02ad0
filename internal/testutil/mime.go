package testutil

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// Leaf is one MIME leaf part of a built test message.
type Leaf struct {
	// Type is the Content-Type value; "" means text/plain.
	Type string
	// Name, when set, makes the part an attachment with this file name.
	Name string
	// Body is the decoded content; attachments are written base64.
	Body []byte
}

// WriteLeaf writes a part's header and body (without a boundary line).
func WriteLeaf(b *bytes.Buffer, l Leaf) {
	ct := l.Type
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	fmt.Fprintf(b, "Content-Type: %s\r\n", ct)
	if l.Name == "" {
		b.WriteString("\r\n")
		b.Write(l.Body)
		b.WriteString("\r\n")
		return
	}
	fmt.Fprintf(b, "Content-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", l.Name)
	s := base64.StdEncoding.EncodeToString(l.Body)
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
}

// NestedMessage returns a message whose leaf sits inside depth nested
// multiparts (depth 0: the body is the leaf), after header.
func NestedMessage(header string, depth int, leaf Leaf) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(header, "\r\n") + "\r\nMIME-Version: 1.0\r\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"nest%d\"\r\n\r\n--nest%d\r\n", i, i)
	}
	WriteLeaf(&b, leaf)
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--nest%d--\r\n", i)
	}
	return b.Bytes()
}

// ManyParts returns a multipart/mixed message of n small text parts
// followed by last, which is part n+1.
func ManyParts(header string, n int, last Leaf) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(header, "\r\n") + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"many\"\r\n\r\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--many\r\nContent-Type: text/plain\r\n\r\nline %d\r\n", i)
	}
	b.WriteString("--many\r\n")
	WriteLeaf(&b, last)
	b.WriteString("--many--\r\n")
	return b.Bytes()
}

// Zip returns a zip archive holding name with data.
func Zip(name string, data []byte) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.Create(name)
	w.Write(data)
	z.Close()
	return b.Bytes()
}

// NestedZip returns data named name inside depth zip archives, each inner
// archive named level<N>.zip: depth 1 is a plain zip holding name.
func NestedZip(depth int, name string, data []byte) []byte {
	for i := depth; i >= 1; i-- {
		data = Zip(name, data)
		name = fmt.Sprintf("level%d.zip", i)
	}
	return data
}

// EncryptedZip returns a zip archive whose one entry is marked encrypted
// (general purpose flag bit 0), as a password-protected archive's are.
func EncryptedZip(name string, data []byte) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Flags: 1})
	w.Write(data)
	z.Close()
	return b.Bytes()
}
