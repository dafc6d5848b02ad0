// Package txid makes transaction ids: 26-character ULIDs (48-bit
// millisecond time, 80 random bits, Crockford base32) that sort by time as
// strings and stay strictly increasing within one process.
package txid

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxMS is the last millisecond the 48-bit time holds.
const maxMS = 1<<48 - 1

// Generator makes monotonic ids. The zero value is ready to use.
type Generator struct {
	mu     sync.Mutex
	lastMS uint64
	hi     uint16 // random bits 79..64
	lo     uint64 // random bits 63..0
}

var std Generator

// New returns an id for t from the process-wide generator.
func New(t time.Time) string { return std.New(t) }

// MaxStepBack is how far back the clock may go with ids still increasing.
// A step back within it (a time server's correction) keeps counting from
// the last id, so ids keep sorting in the order they were made; a larger
// one is a new time line, and the ids made on it hold its time (a clock
// set right after it was far ahead, or a test's clock).
const MaxStepBack = time.Minute

// New returns an id for t, greater than every id this generator returned
// before unless the clock went back by more than MaxStepBack.
func (g *Generator) New(t time.Time) string {
	ms := uint64(min(max(t.UnixMilli(), 0), maxMS))
	g.mu.Lock()
	if ms > g.lastMS || g.lastMS-ms > uint64(MaxStepBack.Milliseconds()) {
		var b [10]byte
		rand.Read(b[:])
		g.lastMS = ms
		g.hi = binary.BigEndian.Uint16(b[:2])
		g.lo = binary.BigEndian.Uint64(b[2:])
	} else {
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
	}
	ms, hi, lo := g.lastMS, g.hi, g.lo
	g.mu.Unlock()
	return encode(ms, hi, lo)
}

func encode(ms uint64, hi uint16, lo uint64) string {
	var out [26]byte
	// 48 bits of time in 10 characters (the first holds 3 bits).
	for i := 9; i >= 0; i-- {
		out[i] = alphabet[ms&31]
		ms >>= 5
	}
	// 80 random bits in 16 characters.
	for i := 25; i >= 10; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | uint64(hi&31)<<59
		hi >>= 5
	}
	return string(out[:])
}

// Time returns the time encoded in id, or the zero time when id is not a
// valid id.
func Time(id string) time.Time {
	if len(id) != 26 {
		return time.Time{}
	}
	var ms uint64
	for i := 0; i < 10; i++ {
		v := indexOf(id[i])
		if v < 0 {
			return time.Time{}
		}
		ms = ms<<5 | uint64(v)
	}
	return time.UnixMilli(int64(ms))
}

func indexOf(c byte) int {
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	for i := 0; i < len(alphabet); i++ {
		if alphabet[i] == c {
			return i
		}
	}
	return -1
}
