package campaign

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Options configure a Store. The zero value of every field means its
// default; New validates the rest.
type Options struct {
	// MaxEntries bounds the recent fingerprints kept (one per observed
	// message). The oldest is evicted first. Default 100000.
	MaxEntries int
	// Window is how long a fingerprint is kept after it was observed.
	// Default 24h.
	Window time.Duration
	// MaxConfirmed bounds the fingerprints kept for confirmed campaigns
	// (up to Exemplars per confirmed campaign, plus each confirmed
	// message). Default 10000.
	MaxConfirmed int
	// ConfirmedTTL is how long a confirmed fingerprint blocks after it was
	// confirmed. Default 30 days.
	ConfirmedTTL time.Duration
	// Similarity is the least estimated Jaccard similarity of shingle
	// sets for a message to join a campaign, in (0, 1]. Default 0.5.
	Similarity float64
	// UserThreshold is K: a campaign sent by identities of more than K
	// distinct users within UserWindow gives a lock signal. Default 10.
	UserThreshold int
	// UserWindow is the window of UserThreshold. Default 1h.
	UserWindow time.Duration
	// RecipientThreshold is N: one identity sending a campaign to more
	// than N recipients gives a report signal. Default 1000.
	RecipientThreshold int
	// MaxUsers and MaxIdentities bound the users and identities tracked
	// per campaign; past them the least recently seen is forgotten, so
	// counts are exact up to these bounds. Defaults 1000 each; MaxUsers
	// must exceed UserThreshold.
	MaxUsers      int
	MaxIdentities int
	// MaxEvidence bounds the transactions listed in a signal, and so the
	// users counted for SignalUsers and the work of each message of a
	// campaign past UserThreshold. Default 25; at least UserThreshold+1.
	MaxEvidence int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Exemplars is how many of a campaign's most recent fingerprints are
// copied to the confirmed set when it is confirmed.
const Exemplars = 4

// maxString bounds every identity, user, transaction id and actor kept.
const maxString = 512

func (o *Options) setDefaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.MaxEntries, 100000)
	defD(&o.Window, 24*time.Hour)
	def(&o.MaxConfirmed, 10000)
	defD(&o.ConfirmedTTL, 30*24*time.Hour)
	if o.Similarity == 0 {
		o.Similarity = 0.5
	}
	def(&o.UserThreshold, 10)
	defD(&o.UserWindow, time.Hour)
	def(&o.RecipientThreshold, 1000)
	def(&o.MaxUsers, 1000)
	def(&o.MaxIdentities, 1000)
	def(&o.MaxEvidence, max(25, o.UserThreshold+1))
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.MaxEntries < 1 || o.MaxEntries > 1<<30:
		return fmt.Errorf("campaign: MaxEntries %d out of range 1..%d", o.MaxEntries, 1<<30)
	case o.MaxConfirmed < 1 || o.MaxConfirmed > 1<<30:
		return fmt.Errorf("campaign: MaxConfirmed %d out of range 1..%d", o.MaxConfirmed, 1<<30)
	case o.Window < 0 || o.ConfirmedTTL < 0 || o.UserWindow < 0:
		return errors.New("campaign: negative Window, ConfirmedTTL or UserWindow")
	case math.IsNaN(o.Similarity) || o.Similarity <= 0 || o.Similarity > 1:
		return fmt.Errorf("campaign: Similarity %v out of range (0, 1]", o.Similarity)
	case o.UserThreshold < 1 || o.RecipientThreshold < 1:
		return errors.New("campaign: UserThreshold and RecipientThreshold must be at least 1")
	case o.MaxUsers <= o.UserThreshold:
		return fmt.Errorf("campaign: MaxUsers %d must exceed UserThreshold %d", o.MaxUsers, o.UserThreshold)
	case o.MaxIdentities < 1:
		return errors.New("campaign: MaxIdentities must be at least 1")
	case o.MaxEvidence <= o.UserThreshold:
		return fmt.Errorf("campaign: MaxEvidence %d must exceed UserThreshold %d", o.MaxEvidence, o.UserThreshold)
	}
	return nil
}
