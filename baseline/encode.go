package baseline

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The encoding of a Profile (see docs/baseline.md, "Encoding"):
//
//	version      1 byte, encodingVersion
//	first        uvarint, Unix hour of the first message (0: zero Profile)
//	hour-first   uvarint
//	active       uvarint
//	counts       3 uvarints: messages, recipients, new domains this hour
//	flags        1 byte: level in bits 0-1, bit 7 set when the known
//	             domains rotated in the current hour
//	numbers      9 float32, little endian: usual[3], peak[3], distinct, perMsg, newShare
//	mask         uvarint, bit i set when sketch word i is not zero
//	             (words 0-3 the hour sketch, 4-19 and 20-35 the two generations)
//	words        the non-zero sketch words in order, 8 bytes little endian each
//
// An identity with a handful of domains encodes in about 80 bytes; the
// largest encoding is maxEncodedLen.
const (
	encodingVersion = 1
	flagRotated     = 0x80
	sketchWords     = hourWords + 2*knownWords
	maxEncodedLen   = 1 + 5*7 + 1 + 9*4 + binary.MaxVarintLen64 + sketchWords*8
)

// ErrEncoding is wrapped by every error UnmarshalBinary returns.
var ErrEncoding = errors.New("baseline: bad profile encoding")

var (
	_ encoding.BinaryMarshaler   = (*Profile)(nil)
	_ encoding.BinaryUnmarshaler = (*Profile)(nil)
	_ encoding.BinaryAppender    = (*Profile)(nil)
)

// AppendBinary appends the encoding of p to b. It never fails.
func (p *Profile) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(p.first))
	b = binary.AppendUvarint(b, uint64(p.hour-p.first))
	b = binary.AppendUvarint(b, uint64(p.active))
	for _, c := range p.count {
		b = binary.AppendUvarint(b, uint64(c))
	}
	flags := byte(p.level)
	if p.rotated {
		flags |= flagRotated
	}
	b = append(b, flags)
	for _, f := range p.floats() {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(*f))
	}
	words := p.words()
	var mask uint64
	for i, w := range words {
		if *w != 0 {
			mask |= 1 << i
		}
	}
	b = binary.AppendUvarint(b, mask)
	for _, w := range words {
		if *w != 0 {
			b = binary.LittleEndian.AppendUint64(b, *w)
		}
	}
	return b, nil
}

// MarshalBinary returns the encoding of p.
func (p *Profile) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, 128))
}

// UnmarshalBinary replaces p with the profile encoded in data, which it
// checks fully: on error p is left unchanged.
func (p *Profile) UnmarshalBinary(data []byte) error {
	var q Profile
	r := reader{b: data}
	if v := r.byte(); v != encodingVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrEncoding, v, encodingVersion)
	}
	first := r.uvarint32()
	delta := r.uvarint32()
	if uint64(first)+uint64(delta) > math.MaxUint32 {
		return fmt.Errorf("%w: hour out of range", ErrEncoding)
	}
	q.first, q.hour = first, first+delta
	q.active = r.uvarint32()
	for i := range q.count {
		q.count[i] = r.uvarint32()
	}
	flags := r.byte()
	q.level, q.rotated = Level(flags&^flagRotated), flags&flagRotated != 0
	for _, f := range q.floats() {
		*f = math.Float32frombits(r.uint32())
	}
	mask := r.uvarint()
	if r.err == nil && mask >= 1<<sketchWords {
		return fmt.Errorf("%w: sketch mask %#x", ErrEncoding, mask)
	}
	for i, w := range q.words() {
		if mask&(1<<i) != 0 {
			if *w = r.uint64(); *w == 0 && r.err == nil {
				return fmt.Errorf("%w: zero sketch word %d marked present", ErrEncoding, i)
			}
		}
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrEncoding, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrEncoding, len(r.b))
	}
	if q.level > Lock {
		return fmt.Errorf("%w: level %d", ErrEncoding, q.level)
	}
	for _, f := range q.floats() {
		if !(*f >= 0) || math.IsInf(float64(*f), 0) {
			return fmt.Errorf("%w: number %v", ErrEncoding, *f)
		}
	}
	if q.newShare > 1 {
		return fmt.Errorf("%w: new-domain share %v above 1", ErrEncoding, q.newShare)
	}
	if q.first == 0 && q != (Profile{}) {
		return fmt.Errorf("%w: state without a first hour", ErrEncoding)
	}
	*p = q
	return nil
}

func (p *Profile) floats() [9]*float32 {
	return [9]*float32{
		&p.usual[0], &p.usual[1], &p.usual[2],
		&p.peak[0], &p.peak[1], &p.peak[2],
		&p.distinct, &p.perMsg, &p.newShare,
	}
}

func (p *Profile) words() [sketchWords]*uint64 {
	var w [sketchWords]*uint64
	for i := range p.hourDomains {
		w[i] = &p.hourDomains[i]
	}
	for g := range p.known {
		for i := range p.known[g] {
			w[hourWords+g*knownWords+i] = &p.known[g][i]
		}
	}
	return w
}

// reader reads fixed and variable integers, remembering the first error.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint32() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		if r.err == nil {
			r.err = errors.New("varint above 32 bits")
		}
		return 0
	}
	return uint32(v)
}
