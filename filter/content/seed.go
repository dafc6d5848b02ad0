package content

import (
	_ "embed"
	"sync"
)

// seedData is the model trained by `go run ./filter/train`; see
// docs/content-model.md for what it was trained on and how to rebuild it.
//
//go:embed seed.ogm
var seedData []byte

var seedOnce = sync.OnceValues(func() (*Model, error) { return Parse(seedData) })

// Seed returns the embedded seed model, parsed once. An error means the
// embedded file does not fit this build (a tokeniser change without a
// retrained model), which the tests catch.
func Seed() (*Model, error) { return seedOnce() }
