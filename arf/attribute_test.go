package arf

import (
	"context"
	"errors"
	"net/textproto"
	"testing"
)

// fakeLookup is an in-memory message log with call counters and an
// injectable error.
type fakeLookup struct {
	byToken map[string]TxRef
	byMsgID map[string]TxRef
	err     error
	calls   int
}

func (f *fakeLookup) ByTraceToken(_ context.Context, token string) (TxRef, bool, error) {
	f.calls++
	if f.err != nil {
		return TxRef{}, false, f.err
	}
	r, ok := f.byToken[token]
	return r, ok, nil
}

func (f *fakeLookup) ByMessageID(_ context.Context, id string) (TxRef, bool, error) {
	f.calls++
	if f.err != nil {
		return TxRef{}, false, f.err
	}
	r, ok := f.byMsgID[id]
	return r, ok, nil
}

type fakeIdentityLookup struct {
	fakeLookup
	byIdentity map[string]TxRef
}

func (f *fakeIdentityLookup) ByIdentity(_ context.Context, id string) (TxRef, bool, error) {
	r, ok := f.byIdentity[id]
	return r, ok, nil
}

var (
	_ Lookup         = (*fakeLookup)(nil)
	_ IdentityLookup = (*fakeIdentityLookup)(nil)
)

func TestAttribute(t *testing.T) {
	tx1 := TxRef{TxID: "01JA", Domain: "out.example.net", User: "web7", Identity: "alice@customer.example"}
	tx2 := TxRef{TxID: "01JB", Domain: "out.example.net", User: "web8", Identity: "bob@customer.example"}
	lk := &fakeLookup{byToken: map[string]TxRef{"tok1": tx1}, byMsgID: map[string]TxRef{"m2@x": tx2}}
	tests := []struct {
		name   string
		fb     Feedback
		lk     Lookup
		method Method
		want   TxRef
	}{
		{"trace token wins", Feedback{TraceToken: "tok1", MessageID: "m2@x", Identity: "carol"}, lk, MethodTraceToken, tx1},
		{"unknown token falls back to message id", Feedback{TraceToken: "nope", MessageID: "m2@x"}, lk, MethodMessageID, tx2},
		{"identity header last", Feedback{TraceToken: "nope", MessageID: "nope", Identity: "carol@customer.example"}, lk, MethodIdentityHeader, TxRef{Identity: "carol@customer.example"}},
		{"identity resolved by IdentityLookup", Feedback{Identity: "dave@customer.example"},
			&fakeIdentityLookup{byIdentity: map[string]TxRef{"dave@customer.example": {Domain: "out.example.net", User: "web9"}}},
			MethodIdentityHeader, TxRef{Identity: "dave@customer.example", Domain: "out.example.net", User: "web9"}},
		{"nothing to go on", Feedback{MessageID: "unknown@x"}, lk, MethodNone, TxRef{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Attribute(context.Background(), &tt.fb, tt.lk)
			if err != nil {
				t.Fatal(err)
			}
			if a.Method != tt.method || a.Tx != tt.want {
				t.Errorf("got %s %+v, want %s %+v", a.Method, a.Tx, tt.method, tt.want)
			}
			if a.Attributed() != (tt.method != MethodNone) {
				t.Errorf("Attributed: got %v", a.Attributed())
			}
		})
	}
	boom := errors.New("db closed")
	if _, err := Attribute(context.Background(), &Feedback{TraceToken: "t"}, &fakeLookup{err: boom}); !errors.Is(err, boom) {
		t.Errorf("lookup error: got %v, want %v", err, boom)
	}
}

func TestAttributeFromParsedReport(t *testing.T) {
	// The identity in the body of the original must never attribute.
	fb, err := parseFile(t, "arf-identity-in-body-only.eml", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lk := &fakeLookup{}
	a, err := Attribute(context.Background(), fb, lk)
	if err != nil {
		t.Fatal(err)
	}
	if a.Method != MethodNone {
		t.Errorf("got %s %+v, want none", a.Method, a.Tx)
	}
}

func TestSkipReason(t *testing.T) {
	h := func(kv ...string) textproto.MIMEHeader {
		m := textproto.MIMEHeader{}
		for i := 0; i < len(kv); i += 2 {
			m.Add(kv[i], kv[i+1])
		}
		return m
	}
	feedback := []string{"fbl@out.example.net"}
	tests := []struct {
		name string
		from string
		rcpt []string
		h    textproto.MIMEHeader
		skip bool
	}{
		{"feedback report", "x@y.example", []string{"a@b.example"}, h("Content-Type", `multipart/report; report-type="feedback-report"; boundary=x`), true},
		{"feedback report, odd case", "x@y.example", []string{"a@b.example"}, h("Content-Type", `Multipart/Report; Report-Type=Feedback-Report; boundary=x`), true},
		{"auto-submitted from null sender", "", []string{"a@b.example"}, h("Auto-Submitted", "auto-generated"), true},
		{"auto-submitted from a person", "x@y.example", []string{"a@b.example"}, h("Auto-Submitted", "auto-replied"), false},
		{"auto-submitted no", "", []string{"a@b.example"}, h("Auto-Submitted", "no"), false},
		{"to the feedback address", "x@y.example", []string{"<FBL@out.example.net>"}, h(), true},
		{"DSN is not a feedback report", "", []string{"a@b.example"}, h("Content-Type", "multipart/report; report-type=delivery-status; boundary=x"), false},
		{"ordinary spam", "x@y.example", []string{"a@b.example"}, h("Content-Type", "text/plain"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SkipReason(tt.from, tt.rcpt, tt.h, feedback)
			if (got != "") != tt.skip {
				t.Errorf("got %q, want skip=%v", got, tt.skip)
			}
		})
	}
	// A generated report is recognised as one.
	raw, err := testGenerator(t, 0).Generate(testIncident("spam", asciiOriginal))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := parseEntity(raw, &limits{maxFields: 100, maxFieldBytes: 1000, maxParts: 10, maxDepth: 2})
	gh := textproto.MIMEHeader{}
	for _, f := range e.fields {
		gh.Add(f.name, f.value)
	}
	if SkipReason("", nil, gh, nil) == "" {
		t.Errorf("generated report: got no skip reason")
	}
}
