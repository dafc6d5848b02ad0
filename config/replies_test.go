package config

import (
	"strings"
	"testing"
)

// TestReplyTemplatesValidated checks that a template with an unknown
// placeholder, or one the configuration cannot fill, is a configuration
// error naming the key and the line.
func TestReplyTemplatesValidated(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown placeholder", "replies:\n  locked_user: \"see {user}\"\n",
			[]string{"line 16: replies.locked_user: unknown placeholder {user}", "{txid}, {support_url}, {domain}, {hostname}"}},
		{"placeholder of another template", "replies:\n  locked_identity: \"refused as {class}\"\n",
			[]string{"replies.locked_identity: unknown placeholder {class}"}},
		{"support_url unset", "replies:\n  blocked: \"see {support_url}\"\n",
			[]string{"replies.blocked: uses {support_url}: set replies.support_url"}},
		{"bad support_url", "replies:\n  support_url: \"ftp://x\"\n",
			[]string{"replies.support_url \"ftp://x\": use an https://"}},
		{"line break", "replies:\n  no_identity: \"a\\r\\n250 ok\"\n",
			[]string{"replies.no_identity: character"}},
		{"non-ASCII", "replies:\n  no_identity: \"refusé\"\n",
			[]string{"printable ASCII"}},
		{"lone brace", "replies:\n  unscannable: \"a } b\"\n",
			[]string{"a lone }"}},
		{"unclosed brace", "replies:\n  unscannable: \"a {limits b\"\n",
			[]string{"unclosed {"}},
		{"too long", "replies:\n  blocked: \"" + strings.Repeat("x", MaxReplyTemplate+1) + "\"\n",
			[]string{"keep it under 300"}},
		{"domain's template", strings.Replace(sectionBase, "    users:\n", "    replies: {locked_user: \"{identity}\"}\n    users:\n", 1),
			[]string{"line 12: domains[0] (out.example.net).replies.locked_user: unknown placeholder {identity}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.yaml
			if !strings.Contains(doc, "listeners:") {
				doc = sectionBase + doc
			}
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatal("no error")
			}
			if ps := ProblemsOf(err); len(ps) != 1 || !strings.Contains(ps[0].Path, "replies") || ps[0].Line == 0 {
				t.Errorf("problems %+v, want one, at a replies key with its line", ps)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestReplyTemplateRender checks placeholders, literal braces and the
// domain's keys over the global ones.
func TestReplyTemplateRender(t *testing.T) {
	c, err := Parse([]byte(sectionBase + "replies:\n  support_url: https://a.example/\n  blocked: \"{{{class}}} at {support_url}\"\n  no_identity: global\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Replies.Merge(&Replies{NoIdentity: "domain's"})
	if m.Blocked != c.Replies.Blocked || m.NoIdentity != "domain's" || m.SupportURL != "https://a.example/" {
		t.Errorf("merged %+v", m)
	}
	tpl, err := ParseReplyTemplate(m.Blocked, Placeholders(ReplyBlocked))
	if err != nil {
		t.Fatal(err)
	}
	got := tpl.Render(func(n string) string { return map[string]string{"class": "spam", "support_url": m.SupportURL}[n] })
	if got != "{spam} at https://a.example/" || !tpl.Uses("class") || tpl.Uses("txid") {
		t.Errorf("rendered %q", got)
	}
}
