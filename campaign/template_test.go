package campaign

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// recipient is one target of a templated campaign.
type recipient struct {
	first, last, local, domain string
}

var (
	firstNames = []string{"John", "Maria", "Ahmed", "Sofia", "Liam", "Chen", "Olga", "Pedro", "Aisha", "Tomasz",
		"Emma", "Kenji", "Fatima", "Lucas", "Ingrid", "Raj", "Chloe", "Mateo", "Yuki", "Noah"}
	lastNames = []string{"Smith", "Garcia", "Khan", "Rossi", "Murphy", "Wang", "Ivanova", "Silva", "Bello", "Nowak",
		"Martin", "Tanaka", "Haddad", "Moreau", "Larsen", "Patel", "Dubois", "Lopez", "Sato", "Weber"}
	domains   = []string{"example.net", "mail.example.org", "example.com", "inbox.example"}
	greetings = []string{"Dear %s,", "Hello %s,", "Hi %s,", "Dear customer %s,", "%s,"}
)

func newRecipient(r *rand.Rand) recipient {
	f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	sep := []string{".", "_", ""}[r.IntN(3)]
	return recipient{first: f, last: l, local: strings.ToLower(f + sep + l), domain: domains[r.IntN(len(domains))]}
}

func (rc recipient) address() string { return rc.local + "@" + rc.domain }

// perRecipient is what the pipeline passes as Input.PerRecipient for this
// recipient: the local part and the display name.
func (rc recipient) perRecipient() []string {
	return []string{rc.local, rc.first + " " + rc.last}
}

// phishCopy renders one copy of a parcel-fee phishing campaign the way
// such campaigns are sent: a different greeting, name, tracking link,
// parcel number, amount, date and unsubscribe token in every copy.
func phishCopy(r *rand.Rand, rc recipient) Input {
	token := fmt.Sprintf("%x", r.Uint64())
	parcel := fmt.Sprintf("%s%09d", []string{"DE", "NL", "GB"}[r.IntN(3)], r.IntN(1e9))
	amount := fmt.Sprintf("%d.%02d", 1+r.IntN(3), r.IntN(100))
	day := fmt.Sprintf("%02d/%02d/2026", 1+r.IntN(28), 1+r.IntN(12))
	greet := fmt.Sprintf(greetings[r.IntN(len(greetings))], rc.first+" "+rc.last)
	link := fmt.Sprintf("https://track-parcel-service.example/confirm/%s?uid=%d&utm_source=mail&utm_campaign=%s#top",
		token, r.IntN(1e6), token[:6])
	text := greet + `

We attempted to deliver your parcel ` + parcel + ` on ` + day + ` but nobody was available to sign
for it. Your package is now held at our local distribution centre.

To arrange a new delivery, a redelivery fee of EUR ` + amount + ` must be paid within 48 hours.
After that period the parcel will be returned to the sender and the fee will no longer apply.

Confirm your delivery address and pay the fee here:
` + link + `

Please have your card details ready. The payment page is secured and takes less than two minutes.

Parcel number: ` + parcel + `
Recipient: ` + rc.first + " " + rc.last + ` <` + rc.address() + `>
Weight: ` + fmt.Sprintf("%d.%d", r.IntN(9), r.IntN(10)) + ` kg

Thank you for choosing our delivery service.
Customer Care Team

You received this notice because a shipment was registered to ` + rc.address() + `.
Unsubscribe: https://track-parcel-service.example/u/` + token + `?e=` + rc.address()
	return Input{
		Subject:      fmt.Sprintf("%s, your parcel %s is waiting: action required", rc.first, parcel),
		Text:         text,
		PerRecipient: rc.perRecipient(),
	}
}

// fiveKB returns a text of about 5 KB made of varied sentences, for the
// benchmarks.
func fiveKB(r *rand.Rand) string {
	words := strings.Fields(`the quarterly report shows steady growth in every region and our team would like
to thank you for your continued support please review the attached summary before the meeting
next week we will discuss the budget the hiring plan and the new office lease if you have any
questions about the figures reach out to the finance department or reply to this message our
customers asked for faster delivery so the logistics group moved two warehouses closer to the
main routes which cut average shipping time by almost a day`)
	var b strings.Builder
	for b.Len() < 5000 {
		for range 12 {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString(fmt.Sprintf("ref %d. ", r.IntN(1e6)))
		if r.IntN(8) == 0 {
			b.WriteString("https://portal.example.com/docs/review?id=" + fmt.Sprint(r.Uint32()) + "\n")
		}
	}
	return b.String()
}
