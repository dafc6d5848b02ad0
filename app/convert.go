package app

import (
	"github.com/outguard/outguard/filter"
	"github.com/outguard/outguard/identity"
	"github.com/outguard/outguard/quarantine"
)

// The conversions between the packages' own names for the same things:
// one function per boundary, each tested over every value
// (convert_test.go).

// bandOf is the message log's band of a classifier band.
func bandOf(b filter.Band) quarantine.Band {
	switch b {
	case filter.BandSuspect:
		return quarantine.BandSuspect
	case filter.BandSpam:
		return quarantine.BandSpam
	}
	return quarantine.BandClean
}

// verdictOf is the message log's verdict of a classifier class.
func verdictOf(c filter.Class) quarantine.Verdict {
	switch c {
	case filter.Spam:
		return quarantine.VerdictSpam
	case filter.Phishing:
		return quarantine.VerdictPhishing
	case filter.Virus:
		return quarantine.VerdictVirus
	}
	return quarantine.VerdictClean
}

// observedClass is the class an identity observation counts for a
// classifier class.
func observedClass(c filter.Class) string {
	switch c {
	case filter.Spam:
		return identity.ClassSpam
	case filter.Phishing:
		return identity.ClassPhishing
	case filter.Virus:
		return identity.ClassVirus
	}
	return identity.ClassClean
}
