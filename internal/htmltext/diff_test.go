package htmltext

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// sameDoc reports how two results differ, or "".
func sameDoc(got, want Doc) string {
	if got.Text != want.Text {
		return fmt.Sprintf("text %q, want %q", got.Text, want.Text)
	}
	if got.PasswordForm != want.PasswordForm {
		return fmt.Sprintf("password form %v, want %v", got.PasswordForm, want.PasswordForm)
	}
	if len(got.Links) != len(want.Links) {
		return fmt.Sprintf("links %q, want %q", got.Links, want.Links)
	}
	for i := range got.Links {
		if got.Links[i] != want.Links[i] {
			return fmt.Sprintf("link %d %q, want %q", i, got.Links[i], want.Links[i])
		}
	}
	return ""
}

// diffCases are inputs where the tokenizer's corners show: raw text
// elements, script escapes, comments, cut-off tags, attribute forms,
// self-closing detection, character references, NUL bytes and line ends.
var diffCases = []string{
	"", "x", "<", "a<", "a</", "a<!", "a<?", "</>", "</ x>y", "a<b", "a<1b>c", "<<p>x",
	"<p>a</p><p>b", "<br/>x<br>y", "<td>a</td><td>b</td><tr>c", "<th>a</th>b",
	"<script>x</script>y", "<script/>x</script>y", "<SCRIPT>x</ScRiPt >y", "<script>x</scriptx>y</script>z",
	"<script><!--x</script>y", "<script><!-- <script>x</script>y</script>z", "<script><!--<script></script>--></script>q",
	"<script><!-- a -- > b --> c</script>d", "<script><!--- <x</script>y", "<script><!x</script>y",
	"<style>a<b</style>c", "<title>a&amp;b\x00c</title>d", "<textarea>a&lt;b</textarea>c", "<xmp>a&amp;b\x00</xmp>c",
	"<iframe>x</iframe>y", "<noscript>a&amp;</noscript>b", "<plaintext>a</plaintext>&amp;\x00",
	"<template><p>x</p></template>y", "<template/>x",
	"<!-- a -->b", "<!-->b", "<!--->b", "<!-- a --!>b", "<!-- a --!x-->b", "<!-- a", "<!DOCTYPE html>x", "<!doctype", "<!x>y", "<?xml a?>b",
	"<a href=x>y</a>", "<a href='x'/>y", "<a href=x/>y</a>", "<a href=\"x\"/>y", "<a x/>y", "<a href=x x=y/>z</a>",
	"<a href=x href=y/>z</a>", "<a HREF=x Href=y>z</a>", "<a href = \" x \" >y</a>", "<a href=>y</a>", "<a =x href=y>z</a>",
	"<a href=\"x\ny\r\nz\rw\">q</a>", "<a href=\"&amp;&lt&copy=&copyx&notin;&notit;&#x41;&#65&#0;&#x80;&#xD800;&#99999999;&semi;\">q</a>",
	"<a href=\"a&b=c&utm_source=x&amp=1&ampx\">q</a>", "<a href=x\x00y>q</a>", "<a\x00 href=x>q</a>",
	"<a href=x>a<img alt=\"b&amp;c\">d</a><a href=y>", "<a href=x>" + strings.Repeat("w ", 300) + "<b>" + strings.Repeat("v ", 300) + "</a>",
	"<img alt=\"x\ny\" alt=z>", "<img alt=\"\" alt=z>q", "<area href=a><form action=' b '><input type=' PaSsWord '>",
	"<input type=pa\u017Fsword>", "<input type=text type=password>",
	"a &amp; b &lt;c&gt; &nbsp;d &notin; &notit; &copy; &copyx &#169; &#xA9 &#; &#x; & &; &amp", "\u00a0a\u2003b\u3000c",
	"a\x00b", "a\xffb\xe2\x82&amp;c\xc3", "<p>\r\na\rb\r\n</p>", "a\vb\fc",
	"<a href=x><a href=y>z</a>", "<a href=x>y", "<a href=x", "<a href='x", "<a href=\"x\">y<p", "<p a=\"b",
	"<div\ttitle=x>a</div\n>b</div x=y>c", "<h1>a</h1><h7>b</h7>", "<blockquote>q</BLOCKQUOTE>r",
}

func TestParseMatchesReference(t *testing.T) {
	for _, c := range diffCases {
		if d := sameDoc(Parse([]byte(c)), refParse([]byte(c))); d != "" {
			t.Errorf("%q: %s", c, d)
		}
	}
}

// FuzzParseMatchesReference holds Parse to the reference converter on
// any input.
func FuzzParseMatchesReference(f *testing.F) {
	for _, c := range diffCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := refParse(bytes.Clone(b))
		if d := sameDoc(Parse(b), want); d != "" {
			t.Fatalf("%q: %s", b, d)
		}
	})
}

// TestCommonEntities checks the fast table against the full one: each name
// decodes to its value, whole (as an attribute value reads it).
func TestCommonEntities(t *testing.T) {
	for name, v := range commonEntities {
		if got := html.UnescapeString("&" + name); got != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
		var z = html.NewTokenizer(strings.NewReader(`<a b="&` + name + `">`))
		z.Next()
		z.TagName()
		if _, val, _ := z.TagAttr(); string(val) != v {
			t.Errorf("%s in an attribute: %q, want %q", name, val, v)
		}
	}
}

func TestParseAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector (sync.Pool drops items)")
	}
	doc := []byte(strings.Repeat(`<div class="row"><p style="x">Hello &amp; welcome,&nbsp;friend <b>now</b></p>`+
		`<img src="a.png" alt="logo"><span>more text</span></div>`, 50))
	Parse(doc)
	if n := testing.AllocsPerRun(20, func() { Parse(doc) }); n > 1 {
		t.Errorf("%v allocations for a document without links, want 1 (the text)", n)
	}
}

// TestNumericReferences checks numeric references, the windows-1252
// characters of 0x80-0x9F and the invalid code points included, against
// golang.org/x/net/html, in text and in attribute values.
func TestNumericReferences(t *testing.T) {
	for _, x := range []int{0, 9, 65, 0x7F, 0xD7FF, 0xD800, 0xDFFF, 0xE000, 0x10FFFF, 0x110000, 1 << 40} {
		checkNumeric(t, fmt.Sprintf("&#%d;", x))
	}
	for x := 0x80; x <= 0x9F; x++ {
		checkNumeric(t, fmt.Sprintf("&#x%X;", x))
		checkNumeric(t, fmt.Sprintf("&#%d", x))
	}
}

func checkNumeric(t *testing.T, ref string) {
	t.Helper()
	got, n := appendEntity(nil, []byte(ref), false)
	if want := html.UnescapeString(ref); string(got) != want || n != len(ref) {
		t.Errorf("%s: %q (%d bytes read), want %q", ref, got, n, want)
	}
	doc := "<a href=\"" + ref + "\">x</a>"
	if d := sameDoc(Parse([]byte(doc)), refParse([]byte(doc))); d != "" {
		t.Errorf("%s in an attribute: %s", ref, d)
	}
}
