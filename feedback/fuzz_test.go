package feedback

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/config"
)

// FuzzIngest feeds arbitrary messages to the intake. Whatever arrives, it
// is refused as not feedback or accepted; an accepted report is stored,
// comes back as a duplicate of itself when sent again, and counts only
// when attributed to an identity and sent by an allow-listed reporter.
func FuzzIngest(f *testing.F) {
	files, _ := filepath.Glob("../arf/testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(report("fbl@mailbox.example", "abuse", 1, original("alice.1@customer.example", "")))
	f.Add(report("fbl@mailbox.example", "fraud", 2, original("", "X-Outguard-Trace: tok-bob\r\n")))
	f.Add(report("fbl@trusted.example", "abuse", 3, original("", "X-AuthUser: carol@customer.example\r\n")))
	f.Add(report("fbl@mailbox.example", "abuse", 4, original("anon.1@customer.example", "")))
	s := settings(true, fbl, config.Reporter{Name: "trusted", Domains: []string{"trusted.example"}, CountIdentityHeader: true})
	s.MaxBytes = 1 << 20
	e := newEnv(f, boltBackend, s)
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := e.in.Ingest(context.Background(), raw, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrNotFeedback) {
				t.Fatalf("error %v, want ErrNotFeedback or none", err)
			}
			if res.Parse.OK || res.ID != "" || res.Counted {
				t.Fatalf("refused, yet %+v", res)
			}
			return
		}
		if !res.Parse.OK {
			t.Fatalf("accepted with a failed parse: %+v", res.Parse)
		}
		if res.Counted == (res.NotCounted != "") {
			t.Fatalf("counted %v with not_counted %q", res.Counted, res.NotCounted)
		}
		if res.Counted && (res.Reporter == "" || res.Method == string(arf.MethodNone) || res.Identity == "" || res.Domain == "") {
			t.Fatalf("counted without reporter, attribution or identity: %+v", res)
		}
		stored := res.ID
		if res.DuplicateOf != "" && res.ID == "" {
			stored = res.DuplicateOf
		} else if res.ID == "" {
			t.Fatalf("accepted, neither stored nor a duplicate: %+v", res)
		}
		again, err := e.in.Ingest(context.Background(), raw, "fuzz")
		if err != nil || !again.Duplicate || again.ID != "" || again.DuplicateOf != stored || again.Counted {
			t.Fatalf("the same report again: %+v, %v; want a duplicate of %s", again, err, stored)
		}
	})
}
