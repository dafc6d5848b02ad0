package arf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/outguard/outguard/arf"
)

func ExampleGenerator_Generate() {
	g, err := arf.NewGenerator(arf.GeneratorOptions{
		From:         "outguard@mta.out.example.net",
		To:           []string{"abuse@out.example.net"},
		ReportingMTA: "mta.out.example.net",
		Version:      "1.0.0",
		Now:          func() time.Time { return time.Date(2026, 11, 3, 9, 14, 9, 0, time.UTC) },
		MessageID:    func() string { return "arf.1@mta.out.example.net" },
		Boundary:     func() string { return "b1" },
	})
	if err != nil {
		panic(err)
	}
	raw, err := g.Generate(arf.Incident{
		TxID:       "01JC0FFEE",
		User:       "web7",
		Domain:     "out.example.net",
		Identity:   "alice@customer.example",
		Verdict:    "spam",
		Score:      12,
		MailFrom:   "alice@customer.example",
		RcptTo:     []string{"bob@mailbox.example"},
		Arrival:    time.Date(2026, 11, 3, 9, 14, 7, 0, time.UTC),
		SourceIP:   netip.MustParseAddr("192.0.2.10"),
		SourcePort: 51234,
		Original:   []byte("From: alice@customer.example\r\nSubject: cheap pills\r\n\r\nbuy\r\n"),
	})
	if err != nil {
		panic(err)
	}
	// Print the machine-readable part.
	s := string(raw)
	start := strings.Index(s, "Feedback-Type:")
	end := strings.Index(s[start:], "\r\n\r\n")
	fmt.Println(strings.ReplaceAll(s[start:start+end], "\r\n", "\n"))
	// Output:
	// Feedback-Type: abuse
	// User-Agent: outguard/1.0.0
	// Version: 1
	// Original-Mail-From: <alice@customer.example>
	// Original-Rcpt-To: <bob@mailbox.example>
	// Arrival-Date: Tue, 03 Nov 2026 09:14:07 +0000
	// Reporting-MTA: dns; mta.out.example.net
	// Source-IP: 192.0.2.10
	// Source-Port: 51234
	// Authentication-Results: mta.out.example.net; auth=pass smtp.auth=web7
	// Reported-Domain: customer.example
}

func ExampleParse() {
	f, err := os.Open("testdata/arf-ipv6-literal.eml")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fb, err := arf.Parse(f, arf.ParseOptions{IdentityHeader: "X-AuthUser"})
	if err != nil {
		fmt.Println("refused:", arf.ErrorCode(err))
		return
	}
	fmt.Println(fb.FeedbackType, fb.SourceIP, fb.ArrivalDate.UTC().Format(time.RFC3339))
	fmt.Println(fb.Identity, fb.MessageID)
	// Output:
	// abuse 2001:db8::25 2026-11-03T09:14:07Z
	// alice@customer.example 20261103091401.4411@shop.example.org
}

func ExampleNewResult() {
	_, err := arf.Parse(strings.NewReader("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n"), arf.ParseOptions{})
	b, _ := json.Marshal(arf.NewResult("plain.eml", nil, err))
	fmt.Println(string(b))
	// Output:
	// {"file":"plain.eml","ok":false,"error":"not-arf","detail":"not-arf: a text/plain message, not a multipart/report","warnings":[],"profile":"","feedback_type":"","version":"","user_agent":"","original_mail_from":"","original_rcpt_to":[],"arrival_date":"","source_ip":"","source_port":0,"reported_domain":[],"reported_uri":[],"incidents":0,"message_id":"","identity":""}
}

type messageLog map[string]arf.TxRef

func (m messageLog) ByTraceToken(_ context.Context, tok string) (arf.TxRef, bool, error) {
	r, ok := m["trace:"+tok]
	return r, ok, nil
}

func (m messageLog) ByMessageID(_ context.Context, id string) (arf.TxRef, bool, error) {
	r, ok := m["msgid:"+id]
	return r, ok, nil
}

func ExampleAttribute() {
	f, err := os.Open("testdata/arf-standard.eml")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fb, err := arf.Parse(f, arf.ParseOptions{})
	if err != nil {
		panic(err)
	}
	log := messageLog{"msgid:20261103091401.4411@shop.example.org": {TxID: "01JA", Domain: "out.example.net", User: "web7", Identity: "alice@customer.example"}}
	a, err := arf.Attribute(context.Background(), fb, log)
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Method, a.Tx.TxID, a.Tx.User, a.Tx.Identity)
	// Output:
	// message-id 01JA web7 alice@customer.example
}
