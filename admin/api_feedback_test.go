package admin

import (
	"reflect"
	"testing"
	"time"

	"github.com/outguard/outguard/arf"
	"github.com/outguard/outguard/feedback"
)

// TestFeedbackResultOf converts a fully filled intake result: every field
// of the API's form is set (a field added to one side and not converted
// fails here), and a refused report shows only its parse result.
func TestFeedbackResultOf(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	in := feedback.Result{ID: "01JZ", Source: "smtp:192.0.2.1", Parse: arf.Result{File: "smtp:192.0.2.1", OK: true, FeedbackType: "abuse"},
		Received: at, Reporter: "mailbox", Method: "message-id", TxID: "01JA", Domain: "out.example.net", User: "web7",
		Identity: "alice@customer.example", Counted: true, NotCounted: "duplicate", Duplicate: true, DuplicateOf: "01JY",
		Locked: true, Learned: true, Digest: "d/00", DedupKey: "k/x"}
	got := FeedbackResultOf(in)
	want := FeedbackResult{Result: in.Parse, ID: "01JZ", Attribution: "message-id", Attributed: true, TxID: "01JA",
		User: "web7", Domain: "out.example.net", Identity: "alice@customer.example", Counted: true, NotCounted: "duplicate",
		Locked: true, Reporter: "mailbox", Duplicate: true, DuplicateOf: "01JY", Received: at, Source: "smtp:192.0.2.1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("field %s not converted", v.Type().Field(i).Name)
		}
	}

	in.Method = string(arf.MethodNone)
	if FeedbackResultOf(in).Attributed {
		t.Errorf("attribution none shown as attributed")
	}

	refused := feedback.Result{Source: "upload", Method: "none", Parse: arf.Result{File: "upload", Error: "not-arf", Detail: "no report part"}}
	if got := FeedbackResultOf(refused); !reflect.DeepEqual(got, FeedbackResult{Result: refused.Parse}) {
		t.Errorf("refused report: got %+v, want only the parse result", got)
	}
}
