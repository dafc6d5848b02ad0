package testutil

import (
	"sync"
	"time"

	"github.com/outguard/outguard/internal/txid"
)

// datedIDs backs DatedID.
var datedIDs struct {
	sync.Mutex
	g    *txid.Generator
	last time.Time
}

// DatedID returns a transaction id that holds t, for tests that date
// records themselves: quarantine.NewID is process-wide and does not go
// back by up to txid.MaxStepBack, so after an id for a later time it may
// not hold t. Ids for
// times in increasing order increase; a time before the last one starts
// a fresh generator.
func DatedID(t time.Time) string {
	datedIDs.Lock()
	defer datedIDs.Unlock()
	if datedIDs.g == nil || t.Before(datedIDs.last) {
		datedIDs.g = new(txid.Generator)
	}
	datedIDs.last = t
	return datedIDs.g.New(t)
}
