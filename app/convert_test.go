package app

import (
	"testing"

	"github.com/outguard/outguard/filter"
)

// TestConversions checks each boundary conversion over every value: the
// names agree on both sides.
func TestConversions(t *testing.T) {
	for b := filter.BandClean; b <= filter.BandSpam; b++ {
		if got := bandOf(b).String(); got != b.String() {
			t.Errorf("bandOf(%s) = %s", b, got)
		}
	}
	for c := filter.Clean; c <= filter.Virus; c++ {
		if got := verdictOf(c).String(); got != c.String() {
			t.Errorf("verdictOf(%s) = %s", c, got)
		}
		if got := observedClass(c); got != c.String() {
			t.Errorf("observedClass(%s) = %s", c, got)
		}
	}
}
