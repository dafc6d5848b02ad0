package filter

import (
	"errors"
	"strings"
	"testing"
)

func FuzzRspamdVerdict(f *testing.F) {
	f.Add(`{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}}}`)
	f.Add(`{"score":3.4,"action":"no action","symbols":{"MISSING_MID":{"score":2.5},"PHISHED_OPENPHISH":{"score":7}}}`)
	f.Add(`{"action":"add header","symbols":null}`)
	f.Add(`[]`)
	r, err := NewRspamd(RspamdOptions{URL: "http://127.0.0.1:1", SpamScore: 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		v, err := r.verdict([]byte(answer))
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want errors to wrap ErrUnavailable", err)
			}
			return
		}
		if v.Class < Clean || v.Class > Virus {
			t.Fatalf("got class %d", v.Class)
		}
		for _, reason := range v.Reasons {
			if !strings.HasPrefix(reason, "rspamd:") {
				t.Fatalf("got reason %q without the engine name", reason)
			}
		}
	})
}

func FuzzClamdReply(f *testing.F) {
	for _, s := range []string{"stream: OK", "stream: Eicar-Test-Signature FOUND", "INSTREAM size limit exceeded. ERROR", "stream:  FOUND", "PONG", "",
		"stream: Heuristics.Encrypted.Zip FOUND", "stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		v, err := parseClamdReply(reply)
		if err != nil {
			if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrClamdSizeLimit) {
				t.Fatalf("got %v, want ErrUnavailable or ErrClamdSizeLimit", err)
			}
			return
		}
		if v.Class == Virus && (len(v.Reasons) != 1 || !strings.HasPrefix(v.Reasons[0], "clamd:")) {
			t.Fatalf("got virus with reasons %q", v.Reasons)
		}
		if v.Class != Virus && v.Class != Clean {
			t.Fatalf("got class %v", v.Class)
		}
		if v.Partial() && (v.Class != Clean || len(v.Gaps) != 1 || v.Gaps[0].Kind != GapExecutable) {
			t.Fatalf("got class %v with gaps %v", v.Class, v.Gaps)
		}
	})
}
