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

// idChars maps a byte to its Crockford value plus one, or zero: lower
// case is accepted; the ambiguous letters I, L, O and U are not.
var idChars = func() (t [256]int8) {
	for i := range len(crockford) {
		c := crockford[i]
		t[c] = int8(i + 1)
		if c >= 'A' && c <= 'Z' {
			t[c+'a'-'A'] = int8(i + 1)
		}
	}
	return t
}()

// decodeIDChar maps a Crockford character to its value, or -1.
func decodeIDChar(c byte) int { return int(idChars[c]) - 1 }

// ParseID checks that id has NewID's form and returns it in canonical
// (upper case) form.
func ParseID(id string) (string, error) {
	canonical, err := checkID(id)
	if err != nil {
		return "", err
	}
	if canonical {
		return id, nil
	}
	out := []byte(id)
	for i := range out {
		out[i] = crockford[decodeIDChar(out[i])]
	}
	return string(out), nil
}

// checkID returns ParseID's error for id, and whether id is canonical
// already, without copying it: records are validated on every write.
func checkID(id string) (canonical bool, err error) {
	if len(id) != IDLen {
		return false, fmt.Errorf("%w: %q: want %d characters", ErrBadID, id, IDLen)
	}
	if v := decodeIDChar(id[0]); v < 0 || v > 7 {
		return false, fmt.Errorf("%w: %q: out of range", ErrBadID, id)
	}
	canonical = true
	for i := range len(id) {
		v := decodeIDChar(id[i])
		if v < 0 {
			return false, fmt.Errorf("%w: %q: %q is not a Crockford base32 character", ErrBadID, id, id[i])
		}
		canonical = canonical && crockford[v] == id[i]
	}
	return canonical, nil
}

// IDTime returns the time encoded in an id made by NewID, to the
// millisecond. The id must be canonical (see ParseID).
func IDTime(id string) (time.Time, error) {
	if _, err := checkID(id); err != nil {
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
func idKey(id string) []byte { return appendIDKey(make([]byte, 0, keyLen), id) }

// appendIDKey appends idKey(id) to b.
func appendIDKey(b []byte, id string) []byte {
	var hi, lo uint64
	for i := 0; i < IDLen && i < len(id); i++ {
		v := uint64(decodeIDChar(id[i]) & 31)
		hi = hi<<5 | lo>>59
		lo = lo<<5 | v
	}
	b = binary.BigEndian.AppendUint64(b, hi)
	return binary.BigEndian.AppendUint64(b, lo)
}

// keyID returns the id of a 16-byte key made by idKey.
func keyID(k []byte) string {
	var b [16]byte
	copy(b[:], k)
	return encodeID(b)
}
