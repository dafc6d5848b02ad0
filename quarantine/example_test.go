package quarantine_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/outguard/outguard/quarantine"
	"go.etcd.io/bbolt"
)

func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	db, err := bbolt.Open(filepath.Join(dir, "outguard.db"), 0o600, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	deliver := func(ctx context.Context, from string, rcpts []string, raw []byte) error {
		fmt.Printf("delivering %d bytes from %s to %v\n", len(raw), from, rcpts)
		return nil
	}
	s, err := quarantine.New(db, quarantine.Options{Deliver: deliver})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()

	ctx := context.Background()
	at := time.Now()
	base := quarantine.Record{
		User: "webhost1", Domain: "out.example.net", Identity: "alice",
		Sender:     "alice@shop.example",
		Recipients: []quarantine.Recipient{{Address: "bob@example.org", Code: 250}},
	}

	// Relayed mail: queued, the client's reply does not wait.
	ok := base
	ok.ID, ok.Status, ok.Verdict, ok.Subject = quarantine.NewID(at), quarantine.StatusAccepted, quarantine.VerdictClean, "Your order"
	if err := s.Append(&ok); err != nil {
		log.Fatal(err)
	}

	// Blocked mail: stored and synced before the 550 is sent.
	spam := base
	spam.ID, spam.Status, spam.Verdict, spam.Subject = quarantine.NewID(at.Add(time.Second)), quarantine.StatusQuarantined, quarantine.VerdictSpam, "Cheap pills"
	raw := []byte("From: alice@shop.example\r\nSubject: Cheap pills\r\n\r\nBuy now.\r\n")
	if err := s.Quarantine(ctx, &spam, raw); err != nil {
		log.Fatal(err)
	}

	// The admin surface: search, show, report, release.
	page, err := s.Search(quarantine.Query{Identity: "alice", Statuses: []quarantine.Status{quarantine.StatusQuarantined}})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range page.Records {
		fmt.Println(r.Status, r.Verdict, r.Subject)
	}
	v, err := s.Show(spam.ID, quarantine.Actor{Name: "ops"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("body: %q\n", v.Body)

	if err := s.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	rows, err := s.Report(quarantine.ReportQuery{GroupBy: quarantine.GroupIdentity, From: at.Add(-time.Hour), To: at.Add(time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range rows {
		fmt.Printf("report: %s/%s %d\n", row.Domain, row.Key, row.Count)
	}

	for range 2 {
		res, err := s.Release(ctx, spam.ID, quarantine.Actor{Name: "ops"})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("released by", res.By, "already:", res.Already)
	}
	// Output:
	// quarantined spam Cheap pills
	// body: "Buy now.\n"
	// report: out.example.net/alice 2
	// delivering 60 bytes from alice@shop.example to [bob@example.org]
	// released by ops already: false
	// released by ops already: true
}

func ExampleNewID() {
	now := time.Now()
	id := quarantine.NewID(now)
	t, _ := quarantine.IDTime(id)
	fmt.Println(len(id), !t.Before(now.Truncate(time.Millisecond)))
	fmt.Println(quarantine.NewID(now) > id)                   // later ids sort after
	fmt.Println(quarantine.NewID(now.Add(-time.Second)) > id) // even when the clock goes back
	// Output:
	// 26 true
	// true
	// true
}
