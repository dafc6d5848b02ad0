//go:build race

package htmltext

// raceEnabled: the race detector makes sync.Pool drop items, so the
// allocation counts do not hold.
const raceEnabled = true
