package app

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outguard/outguard/internal/testutil"
	"github.com/outguard/outguard/quarantine"
)

// The identity recipes of docs/identity-recipes.md, whose outguard rules
// (and MTA snippets) live in testdata/identity-recipes. Each test sends,
// over SMTP to a running outguard, a message as the recipe's MTA emits it
// (format from the MTA's documentation and from mail it sent), with a copy
// of the identity header written by a script on the hosting server where
// the script can write it: above the MTA's header for an MTA that appends,
// below for one that prepends.

const recipesDir = "../testdata/identity-recipes"

// recipe returns the domain-level YAML of a recipe.
func recipe(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recipesDir, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recipeEnv starts outguard with the recipe's rules on the domain, and a
// network user web1 (127.0.0.1) besides the trial user, for a sending MTA
// that relays without AUTH.
func recipeEnv(t *testing.T, rules string) *env {
	t.Helper()
	nh := testutil.StartNextHop(t)
	path := testConfig(t, nh.Addr, "")
	b, _ := os.ReadFile(path)
	var dom strings.Builder
	dom.WriteString("  - name: out.example.net\n")
	for _, l := range strings.SplitAfter(strings.TrimRight(rules, "\n")+"\n", "\n") {
		if l != "" {
			dom.WriteString("    " + l)
		}
	}
	y := strings.Replace(string(b), "  - name: out.example.net\n", dom.String(), 1)
	y = strings.Replace(y, "    users:\n", "    users:\n      - name: web1\n        networks: [\"127.0.0.1/32\"]\n", 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nh: nh, path: path, clock: &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}}
	e.start()
	return e
}

// lastRecord returns the newest message log record.
func (e *env) lastRecord() *quarantine.Record {
	e.t.Helper()
	e.flush()
	page, err := e.app.store.Search(quarantine.Query{Limit: 1})
	if err != nil || len(page.Records) != 1 {
		e.t.Fatalf("search: %v (%d records)", err, len(page.Records))
	}
	return page.Records[0]
}

type recipeCase struct {
	name         string
	msg          string
	want         string // identity, "" for none
	wantReason   string // substring of the record's IdentityReason
	wantStripped string // a header line the next hop must not see
}

func runRecipe(t *testing.T, rules string, cases []recipeCase) {
	e := recipeEnv(t, rules)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			before := len(e.nh.Received())
			if err := e.send("sender@customer.example", strings.ReplaceAll(tc.msg, "\n", "\r\n")); err != nil {
				t.Fatal(err)
			}
			r := e.lastRecord()
			if r.Identity != tc.want || !strings.Contains(r.IdentityReason, tc.wantReason) {
				t.Errorf("identity %q (source %q, reason %q), want %q (reason containing %q)", r.Identity, r.IdentitySource, r.IdentityReason, tc.want, tc.wantReason)
			}
			if tc.wantStripped != "" {
				got := e.nh.Received()
				if len(got) != before+1 {
					t.Fatalf("next hop got %d messages, want %d", len(got), before+1)
				}
				if d := got[len(got)-1].Data; bytes.Contains(d, []byte(tc.wantStripped)) {
					t.Errorf("relayed message still carries %q:\n%s", tc.wantStripped, d)
				}
			}
		})
	}
}

// cPanel: the block Exim on cPanel appends (X-AntiAbuse, then
// X-Get-Message-Sender-Via and X-Authenticated-Sender, then X-Source*).
func cpanelBlock(via string) string {
	return "X-AntiAbuse: This header was added to track abuse, please include it with any abuse report\n" +
		"X-AntiAbuse: Primary Hostname - server.hosting.test\n" +
		"X-AntiAbuse: Original Domain - example.org\n" +
		"X-AntiAbuse: Originator/Caller UID/GID - [47 12] / [47 12]\n" +
		"X-AntiAbuse: Sender Address Domain - customer.example\n" +
		"X-Get-Message-Sender-Via: server.hosting.test: " + via + "\n" +
		"X-Authenticated-Sender: server.hosting.test: alice@customer.example\n" +
		"X-Source: \nX-Source-Args: \nX-Source-Dir: \n"
}

const scriptHeaders = "From: Shop <shop@customer.example>\nTo: <rcpt@example.org>\nSubject: your order\nMIME-Version: 1.0\nContent-Type: text/plain\n"

func TestRecipeCPanel(t *testing.T) {
	rules := recipe(t, "cpanel")
	runRecipe(t, rules, []recipeCase{
		{"mailbox login", "Received: from [192.0.2.7] by server.hosting.test with esmtpsa\n" + scriptHeaders + cpanelBlock("authenticated_id: alice@customer.example") + "\nbody\n", "alice@customer.example", "", ""},
		{"account login with details", scriptHeaders + cpanelBlock("authenticated_id: alice+customer.example/only user confirmed/virtual account not confirmed") + "\nbody\n", "alice+customer.example", "", ""},
		{"local user", scriptHeaders + cpanelBlock("acl_c_authenticated_local_user: alice/alice") + "\nbody\n", "alice", "", ""},
		{"forged copy above", "X-Get-Message-Sender-Via: server.hosting.test: authenticated_id: innocent-neighbour/innocent-neighbour\n" + scriptHeaders + cpanelBlock("authenticated_id: alice/alice") + "\nbody\n", "alice", "", ""},
		{"forged copy among the script's headers", scriptHeaders + "X-Get-Message-Sender-Via: server.hosting.test: authenticated_id: innocent-neighbour\n" + cpanelBlock("authenticated_id: alice") + "\nbody\n", "alice", "", ""},
	})
	// With the default (only), the same forgery gives no identity.
	only := strings.Replace(rules, "    occurrence: last\n", "", 1)
	runRecipe(t, only, []recipeCase{
		{"forged copy above, occurrence only", "X-Get-Message-Sender-Via: server.hosting.test: authenticated_id: innocent-neighbour\n" + scriptHeaders + cpanelBlock("authenticated_id: alice") + "\nbody\n", "", "different values", ""},
	})
}

func TestRecipePlesk(t *testing.T) {
	rules := recipe(t, "plesk")
	block := "X-PPP-Message-ID: <176078281513.1198823.10393441334901805564@web3.hosting.test>\nX-PPP-Vhost: customer.example\n"
	runRecipe(t, rules, []recipeCase{
		{"website", scriptHeaders + block + "\nbody\n", "customer.example", "", ""},
		{"with a later header (a milter's)", scriptHeaders + block + "X-Virus-Scanned: clamav-milter 1.4.3 at web3.hosting.test\n\nbody\n", "customer.example", "", ""},
		{"forged copy above", "X-PPP-Vhost: innocent-neighbour.example\n" + scriptHeaders + block + "\nbody\n", "customer.example", "", ""},
	})
	runRecipe(t, strings.Replace(rules, "    occurrence: last\n", "", 1), []recipeCase{
		{"forged copy above, occurrence only", "X-PPP-Vhost: innocent-neighbour.example\n" + scriptHeaders + block + "\nbody\n", "", "different values", ""},
	})
}

func TestRecipeDirectAdmin(t *testing.T) {
	rules := recipe(t, "directadmin")
	runRecipe(t, rules, []recipeCase{
		{"mailbox login", scriptHeaders + "X-Authenticated-Id: alice@customer.example\n\nbody\n", "alice@customer.example", "", "X-Authenticated-Id"},
		{"local user", scriptHeaders + "X-Authenticated-Id: alice\n\nbody\n", "alice", "", "X-Authenticated-Id"},
		// headers_remove takes the script's copy out; were it kept, it
		// would sit above Exim's.
		{"forged copy above", "X-Authenticated-Id: innocent-neighbour\n" + scriptHeaders + "X-Authenticated-Id: alice\n\nbody\n", "alice", "", "innocent-neighbour"},
	})
}

func TestRecipeExim(t *testing.T) {
	rules := recipe(t, "exim")
	runRecipe(t, rules, []recipeCase{
		{"local user", "Received: from alice by web2.hosting.test with local (Exim 4.96)\n\t(envelope-from <alice@web2.hosting.test>)\n\tid 1xXvto-0002A3-1f;\n\tMon, 30 Nov 2026 07:34:08 +0000\n" + scriptHeaders + "X-AuthUser: alice\n\nbody\n", "alice", "", "X-AuthUser"},
		{"forged copy above", "X-AuthUser: innocent-neighbour\n" + scriptHeaders + "X-AuthUser: alice\n\nbody\n", "alice", "", "innocent-neighbour"},
	})
	runRecipe(t, strings.Replace(rules, "    occurrence: last\n", "", 1), []recipeCase{
		{"forged copy above, occurrence only", "X-AuthUser: innocent-neighbour\n" + scriptHeaders + "X-AuthUser: alice\n\nbody\n", "", "different values", ""},
	})
}

func TestRecipePostfix(t *testing.T) {
	rules := recipe(t, "postfix")
	local := "Received: by web1.hosting.test (Postfix, from userid 1001)\n\tid BDDE59C3363; Mon, 30 Nov 2026 07:32:25 +0000 (UTC)\n"
	sasl := "Received: from client.example (client.example [192.0.2.7])\n\t(Authenticated sender: alice@customer.example)\n\tby web1.hosting.test (Postfix) with ESMTPSA id 4Xb2Kq1c7Vz9sWj\n\tfor <rcpt@example.org>; Mon, 30 Nov 2026 07:32:25 +0000 (UTC)\n"
	unauth := "Received: from client.example (unknown [192.0.2.7])\n\tby web1.hosting.test (Postfix) with ESMTP id 4Xb2Kq1c7Vz9sWj\n\tfor <\"(Authenticated sender: innocent-neighbour)\"@example.org>; Mon, 30 Nov 2026 07:32:25 +0000 (UTC)\n"
	forgedBelow := "Received: from client.example (client.example [192.0.2.9])\n\t(Authenticated sender: innocent-neighbour)\n\tby web1.hosting.test (Postfix) with ESMTPSA id 1\nReceived: by web1.hosting.test (Postfix, from userid 1002)\n\tid 2; Mon, 30 Nov 2026 07:30:00 +0000 (UTC)\n"
	runRecipe(t, rules, []recipeCase{
		{"local submission", local + scriptHeaders + "\nbody\n", "1001", "", ""},
		{"SMTP AUTH submission", sasl + scriptHeaders + "\nbody\n", "alice@customer.example", "", ""},
		{"forged Received headers below (local)", local + forgedBelow + scriptHeaders + "\nbody\n", "1001", "", ""},
		{"forged Received headers below (SMTP AUTH)", sasl + forgedBelow + scriptHeaders + "\nbody\n", "alice@customer.example", "", ""},
		{"unauthenticated: a quoted recipient does not pass for the login", unauth + forgedBelow + scriptHeaders + "\nbody\n", "", "", ""},
	})
}

// TestRecipesDocumented: every snippet in docs/identity-recipes.md that
// starts with "# recipe: NAME" is exactly the tested file of that name,
// and every tested file is in the docs.
func TestRecipesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/identity-recipes.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	var cur *strings.Builder
	var name string
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur, name = &strings.Builder{}, ""
		case cur != nil && l == "```":
			if name != "" {
				blocks[name] = cur.String()
			}
			cur = nil
		case cur != nil:
			if cur.Len() == 0 && strings.HasPrefix(l, "# recipe: ") {
				name = strings.TrimPrefix(l, "# recipe: ")
			}
			cur.WriteString(l + "\n")
		}
	}
	files, _ := filepath.Glob(filepath.Join(recipesDir, "*"))
	if len(files) == 0 {
		t.Fatal("no recipe files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".yaml"), ".conf")
		got, ok := blocks[n]
		if !ok {
			t.Errorf("%s: no block starting with \"# recipe: %s\" in docs/identity-recipes.md", f, n)
			continue
		}
		if got != string(b) {
			t.Errorf("docs/identity-recipes.md's %s differs from %s:\n%s\nwant:\n%s", n, f, got, b)
		}
		delete(blocks, n)
	}
	for n := range blocks {
		t.Errorf("docs/identity-recipes.md has recipe %s with no file in %s", n, recipesDir)
	}
}
