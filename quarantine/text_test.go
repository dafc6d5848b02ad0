package quarantine

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONNames(t *testing.T) {
	r := sampleRecord(testBase, StatusQuarantined, VerdictPhishing)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Status":"quarantined"`, `"Verdict":"phishing"`, `"ClientIP":"192.0.2.10"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("got %s, want it to contain %s", b, want)
		}
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Status != r.Status || back.Verdict != r.Verdict {
		t.Errorf("got %v %v back, want %v %v", back.Status, back.Verdict, r.Status, r.Verdict)
	}
	var q struct {
		G GroupBy
		C Class
	}
	if err := json.Unmarshal([]byte(`{"G":"sender","C":"virus"}`), &q); err != nil || q.G != GroupSender || q.C != ClassVirus {
		t.Errorf("got %+v, %v; want sender, virus", q, err)
	}
	if err := json.Unmarshal([]byte(`{"G":"nope"}`), &q); err == nil {
		t.Errorf("got no error for an unknown grouping")
	}
	if !r.InDomain("OUT.EXAMPLE.NET") || !r.InDomain("") || r.InDomain("other.example") {
		t.Errorf("InDomain: wrong answers for %s", r.Domain)
	}
}
