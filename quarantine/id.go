package quarantine

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/outguard/outguard/internal/txid"
)

// IDLen is the length of a record id made by NewID.
const IDLen = 26

// crockford is Crockford's base32 alphabet, whose byte order matches the
// order of the values it encodes, so ids compare as strings in time order.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxIDTime is the last millisecond a 48-bit timestamp can hold.
const maxIDTime = 1<<48 - 1

// NewID returns a 26-character, time-ordered id for a transaction at t, in
// the ULID layout: 48 bits of Unix milliseconds then 80 random bits, in
// Crockford base32. It is internal/txid's: the ids one process makes are
// strictly increasing, within a millisecond and when the clock goes back
// (by up to txid.MaxStepBack), so sorting ids sorts records by creation
// order.
func NewID(t time.Time) string { return txid.New(t) }

func encodeID(b [16]byte) string {
	var out [IDLen]byte
	// 128 bits into 26 5-bit groups: the first group holds the top 3 bits.
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// decodeIDChar maps a Crockford character to its value, or -1. Lower case
// is accepted; the ambiguous letters I, L, O and U are not.
func decodeIDChar(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		c -= 'a' - 'A'
	}
	for i := 10; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

// ParseID checks that id has NewID's form and returns it in canonical
// (upper case) form.
func ParseID(id string) (string, error) {
	if len(id) != IDLen {
		return "", fmt.Errorf("%w: %q: want %d characters", ErrBadID, id, IDLen)
	}
	if v := decodeIDChar(id[0]); v < 0 || v > 7 {
		return "", fmt.Errorf("%w: %q: out of range", ErrBadID, id)
	}
	out := []byte(id)
	for i := range out {
		v := decodeIDChar(out[i])
		if v < 0 {
			return "", fmt.Errorf("%w: %q: %q is not a Crockford base32 character", ErrBadID, id, out[i])
		}
		out[i] = crockford[v]
	}
	return string(out), nil
}

// IDTime returns the time encoded in an id made by NewID, to the
// millisecond. The id must be canonical (see ParseID).
func IDTime(id string) (time.Time, error) {
	if _, err := ParseID(id); err != nil {
		return time.Time{}, err
	}
	var ms uint64
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(decodeIDChar(id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// idFloor returns the smallest id at t's millisecond; every id made by
// NewID for a time at or after t sorts at or after it.
func idFloor(t time.Time) string {
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	if ms > maxIDTime {
		ms = maxIDTime
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(ms)<<16)
	return encodeID(b)
}

// keyLen is the length of an id in bbolt keys: its 128 bits.
const keyLen = 16

// idKey returns the 16-byte binary form of a canonical id, used in bbolt
// keys; it sorts like the id.
func idKey(id string) []byte {
	var hi, lo uint64
	for i := 0; i < IDLen && i < len(id); i++ {
		v := uint64(decodeIDChar(id[i]) & 31)
		hi = hi<<5 | lo>>59
		lo = lo<<5 | v
	}
	b := make([]byte, keyLen)
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

// keyID returns the id of a 16-byte key made by idKey.
func keyID(k []byte) string {
	var b [16]byte
	copy(b[:], k)
	return encodeID(b)
}
