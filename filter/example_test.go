package filter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/outguard/outguard/filter"
)

func ExampleClassifier_Classify() {
	builtin, err := filter.NewBuiltin(filter.BuiltinOptions{
		ProtectedDomains: []string{"paypal.com"},
		Rules: []filter.Rule{
			{Name: "WIRE_URGENT", Target: filter.TargetBody, Regex: true, Pattern: `(?i)urgent\s+wire`, Score: 3},
		},
	})
	if err != nil {
		panic(err)
	}
	c, err := filter.New(filter.Options{
		Engines: []filter.EngineSpec{{Engine: builtin, Timeout: 5 * time.Second, OnError: filter.OnErrorTempfail}},
	})
	if err != nil {
		panic(err)
	}

	raw := []byte("From: Service <service@example.com>\r\n" +
		"To: customer@example.org\r\n" +
		"Subject: account notice\r\n" +
		"\r\n" +
		"Urgent wire needed. Log in at http://paypal.com@login.example.net/ today.\r\n")
	m, err := filter.ParseBytes(raw, c.Limits())
	if err != nil {
		panic(err)
	}
	m.Envelope = filter.Envelope{MailFrom: "service@example.com", Rcpts: []string{"customer@example.org"}, User: "alice"}

	v, err := c.Classify(context.Background(), m)
	if err != nil {
		panic(err) // errors.Is(err, filter.ErrTempfail): answer 451 4.7.1
	}
	fmt.Println(v.Class, v.Score)
	for _, r := range v.Reasons {
		fmt.Println(r)
	}
	// Output:
	// phishing 103
	// builtin:URL_USERINFO_DOMAIN(100)
	// builtin:WIRE_URGENT(3)
}

func ExampleClassifyFile() {
	builtin, _ := filter.NewBuiltin(filter.BuiltinOptions{})
	c, _ := filter.New(filter.Options{Engines: []filter.EngineSpec{{Engine: builtin}}})
	r := filter.ClassifyFile(context.Background(), c, "../testdata/spam/virus-eicar-zip.eml")
	fmt.Println(r.Class, r.Reasons, r.Error == "")
	// Output:
	// virus [builtin:EICAR(1000)] true
}
