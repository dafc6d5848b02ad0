package campaign_test

import (
	"fmt"
	"time"

	"github.com/outguard/outguard/campaign"
)

// Twelve users send the same phish, each copy addressed to someone else
// with its own tracking link: one campaign, and from the eleventh user on
// a lock signal. After an operator confirms it, a copy from anyone is
// blocked.
func ExampleStore_Observe() {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	st, err := campaign.New(campaign.Options{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	names := []string{"Anna", "Boris", "Chen", "Dara", "Emil", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Max"}
	copyFor := func(i int) campaign.Fingerprint {
		return campaign.Compute(campaign.Input{
			Subject: "Your account will be suspended",
			Text: fmt.Sprintf("Dear %s,\n\nwe noticed unusual sign-in activity on your account on %d November. "+
				"To keep your mailbox open, confirm your identity within 24 hours at "+
				"https://secure-login.example/verify?u=%d&t=%x or your account will be suspended.\n\nThe Security Team",
				names[i], 1+i, 1000+i, i*7919),
			PerRecipient: []string{names[i]},
		})
	}
	var id string
	for i := range 12 {
		fp := copyFor(i)
		res := st.Observe(&fp, campaign.Message{
			TxID: fmt.Sprintf("tx%d", i), Identity: fmt.Sprintf("box@user%d.example", i),
			User: fmt.Sprintf("user%d", i), Recipients: 1,
		})
		id = res.Campaign
		if sig, ok := res.Strongest(); ok {
			fmt.Printf("message %d: %s %s, %d users (threshold %d)\n", i+1, sig.Kind, sig.Action, sig.Count, sig.Threshold)
		}
	}
	fmt.Println("campaigns:", st.Stats().Campaigns)

	if err := st.Confirm(id, "operator"); err != nil {
		panic(err)
	}
	fp := copyFor(12)
	res := st.Observe(&fp, campaign.Message{TxID: "tx12", Identity: "other@elsewhere.example", User: "other", Recipients: 1})
	sig, _ := res.Strongest()
	fmt.Println(sig.Kind, sig.Action, res.Campaign == id)
	// Output:
	// message 11: campaign_users lock, 11 users (threshold 10)
	// message 12: campaign_users lock, 12 users (threshold 10)
	// campaigns: 1
	// campaign_confirmed block true
}
