package htmltext

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// benchDocs are the HTML of a real newsletter of testdata/modern (about
// 5 KB of mail) and the same repeated to about 50 KB.
func benchDocs(b *testing.B) []struct {
	name string
	html []byte
} {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "modern", "ham", "a-061-outdoor-shop-spring-sale.eml"))
	if err != nil {
		b.Fatal(err)
	}
	parts := htmlParts(raw)
	if len(parts) != 1 {
		b.Fatalf("%d HTML parts", len(parts))
	}
	h := parts[0]
	i, j := bytes.Index(h, []byte("<body")), bytes.LastIndex(h, []byte("</body>"))
	var big []byte
	big = append(big, h[:i]...)
	for len(big) < 45<<10 {
		big = append(big, h[i:j]...)
	}
	big = append(big, h[j:]...)
	return []struct {
		name string
		html []byte
	}{{"5KB", h}, {"50KB", big}}
}

// BenchmarkParse runs Parse and, for comparison, the reference converter
// on golang.org/x/net/html's tokenizer: go test -bench Parse -benchmem.
func BenchmarkParse(b *testing.B) {
	for _, d := range benchDocs(b) {
		for _, impl := range []struct {
			name  string
			parse func([]byte) Doc
		}{{"scanner", Parse}, {"reference", refParse}} {
			b.Run(d.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(d.html)))
				b.ReportAllocs()
				for b.Loop() {
					impl.parse(d.html)
				}
			})
		}
	}
}
