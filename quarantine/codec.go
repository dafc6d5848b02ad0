package quarantine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Records are stored in a hand-rolled binary layout: a version byte, then
// the fields in a fixed order, integers as varints and strings as a length
// varint and the bytes. The id is the bbolt key and is not repeated; Time
// is stored as nanoseconds after the id's millisecond, which is usually a
// single byte or two. A compact layout matters because the log keeps every
// transaction for weeks.

// codecVersion 2 appended the band, the model version and the learnt
// label; version 3 the partially-scanned limits; version 4 the campaign
// id; version 5 the identity's source and reason; version 6 the release's
// reason, after DeletedBy, and its learn request, as bit 4 of the
// quarantine flags. Older records decode with those empty.
const codecVersion = 6

// Bounds applied when decoding, so that a corrupt record cannot make the
// decoder allocate without limit.
const (
	maxFieldLen   = 1 << 20
	maxListLen    = 1 << 16
	maxRecordSize = 16 << 20
)

var errCorrupt = errors.New("corrupt record")

type enc struct{ b []byte }

func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.varint(0)
		return
	}
	e.varint(t.UnixNano())
}

// score stores scores with at most two decimals (rspamd's) as a small
// varint of hundredths, shifted left one bit; others as a 1 and the
// float's bits.
func (e *enc) score(f float64) {
	c := math.Round(f * 100)
	if math.Abs(c) < 1<<50 && c/100 == f {
		e.varint(int64(c) << 1)
		return
	}
	e.varint(1)
	e.uvarint(math.Float64bits(f))
}

// encodedSizeHint is a little more than the size of r's encoding for
// most records: the capacity to encode r without growing the buffer. A
// record that needs more only makes it grow.
func encodedSizeHint(r *Record) int {
	// The fixed fields, the times and the strings' lengths: 96 bytes
	// hold them unless most integers are huge.
	n := 96 + len(r.Listener) + len(r.User) + len(r.Domain) + len(r.Identity) + len(r.Sender) +
		len(r.HeaderFrom) + len(r.Subject) + len(r.MessageID) + len(r.NextHopReply) + len(r.TraceToken) +
		len(r.Model) + len(r.Learned) + len(r.Campaign) + len(r.IdentitySource) + len(r.IdentityReason)
	for _, rc := range r.Recipients {
		n += 8 + len(rc.Address) + len(rc.Text)
	}
	for _, s := range r.Reasons {
		n += 2 + len(s)
	}
	for _, s := range r.Partial {
		n += 2 + len(s)
	}
	if q := r.Quarantine; q != nil {
		n += 64 + len(q.ReleasedBy) + len(q.DeletedBy) + len(q.ReleaseReason)
	}
	return n
}

// encodeRecord appends r's encoding to b. r must have passed validate.
func encodeRecord(b []byte, r *Record) []byte {
	e := enc{b: b}
	e.b = append(e.b, codecVersion)
	idt, _ := IDTime(r.ID)
	e.varint(r.Time.UnixNano() - idt.UnixNano())
	e.str(r.Listener)
	if r.ClientIP.IsValid() {
		ip := r.ClientIP.AsSlice()
		e.uvarint(uint64(len(ip)))
		e.b = append(e.b, ip...)
	} else {
		e.uvarint(0)
	}
	e.uvarint(uint64(r.ClientPort))
	e.str(r.User)
	e.str(r.Domain)
	e.str(r.Identity)
	e.str(r.Sender)
	e.uvarint(uint64(len(r.Recipients)))
	for _, rc := range r.Recipients {
		e.str(rc.Address)
		// Code and the refused flag share one varint.
		v := uint64(rc.Code) << 1
		if rc.Refused {
			v |= 1
		}
		e.uvarint(v)
		e.str(rc.Text)
	}
	e.str(r.HeaderFrom)
	e.str(r.Subject)
	e.str(r.MessageID)
	e.varint(r.Size)
	e.b = append(e.b, byte(r.Status), byte(r.Verdict))
	e.score(r.Score)
	e.uvarint(uint64(len(r.Reasons)))
	for _, s := range r.Reasons {
		e.str(s)
	}
	e.str(r.NextHopReply)
	e.varint(int64(r.Duration))
	e.str(r.TraceToken)
	e.uvarint(uint64(r.Complaints))
	e.time(r.LastComplaint)
	if q := r.Quarantine; q != nil {
		flags := byte(1)
		if q.Expired {
			flags |= 2
		}
		if q.ReleaseLearn {
			flags |= 4
		}
		e.b = append(e.b, flags)
		e.varint(q.RawSize)
		e.varint(q.StoredSize)
		e.time(q.ReleasedAt)
		e.str(q.ReleasedBy)
		e.time(q.DeletedAt)
		e.str(q.DeletedBy)
		e.str(q.ReleaseReason)
	} else {
		e.b = append(e.b, 0)
	}
	e.b = append(e.b, byte(r.Band))
	e.str(r.Model)
	e.str(r.Learned)
	e.uvarint(uint64(len(r.Partial)))
	for _, s := range r.Partial {
		e.str(s)
	}
	e.str(r.Campaign)
	e.str(r.IdentitySource)
	e.str(r.IdentityReason)
	return e.b
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) bytes() []byte {
	n := d.uvarint()
	if n > maxFieldLen || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) list() int {
	n := d.uvarint()
	// Each element takes at least one byte, which bounds allocation by
	// the input's size.
	if n > maxListLen || n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) score() float64 {
	v := d.varint()
	if v&1 == 0 {
		return float64(v>>1) / 100
	}
	if v != 1 {
		d.fail()
	}
	return math.Float64frombits(d.uvarint())
}

func (d *dec) time() time.Time {
	v := d.varint()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// decodeRecord decodes a record stored under the canonical id.
func decodeRecord(id string, b []byte) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: %s: %d bytes", errCorrupt, id, len(b))
	}
	idt, err := IDTime(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	d := dec{b: b}
	v := d.byte()
	if v < 1 || v > codecVersion {
		return nil, fmt.Errorf("%w: %s: unknown version %d", errCorrupt, id, v)
	}
	r := &Record{ID: id}
	r.Time = time.Unix(0, idt.UnixNano()+d.varint()).UTC()
	r.Listener = d.str()
	if ip := d.bytes(); len(ip) > 0 {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			d.fail()
		}
		r.ClientIP = a
	}
	port := d.uvarint()
	if port > math.MaxUint16 {
		d.fail()
	}
	r.ClientPort = uint16(port)
	r.User = d.str()
	r.Domain = d.str()
	r.Identity = d.str()
	r.Sender = d.str()
	if n := d.list(); n > 0 {
		r.Recipients = make([]Recipient, n)
		for i := range r.Recipients {
			rc := &r.Recipients[i]
			rc.Address = d.str()
			v := d.uvarint()
			if v>>1 > math.MaxInt32 {
				d.fail()
			}
			rc.Code = int(v >> 1)
			rc.Refused = v&1 == 1
			rc.Text = d.str()
		}
	}
	r.HeaderFrom = d.str()
	r.Subject = d.str()
	r.MessageID = d.str()
	r.Size = d.varint()
	r.Status = Status(d.byte())
	r.Verdict = Verdict(d.byte())
	r.Score = d.score()
	if n := d.list(); n > 0 {
		r.Reasons = make([]string, n)
		for i := range r.Reasons {
			r.Reasons[i] = d.str()
		}
	}
	r.NextHopReply = d.str()
	r.Duration = time.Duration(d.varint())
	r.TraceToken = d.str()
	c := d.uvarint()
	if c > math.MaxInt32 {
		d.fail()
	}
	r.Complaints = int(c)
	r.LastComplaint = d.time()
	if flags := d.byte(); flags&1 == 1 {
		if flags&^7 != 0 || v < 6 && flags&4 != 0 {
			d.fail()
		}
		q := &QuarantineInfo{Expired: flags&2 == 2, ReleaseLearn: flags&4 == 4}
		q.RawSize = d.varint()
		q.StoredSize = d.varint()
		q.ReleasedAt = d.time()
		q.ReleasedBy = d.str()
		q.DeletedAt = d.time()
		q.DeletedBy = d.str()
		if v >= 6 {
			q.ReleaseReason = d.str()
		}
		r.Quarantine = q
	}
	if v >= 2 {
		r.Band = Band(d.byte())
		r.Model = d.str()
		r.Learned = d.str()
	}
	if v >= 3 {
		if n := d.list(); n > 0 {
			r.Partial = make([]string, n)
			for i := range r.Partial {
				r.Partial[i] = d.str()
			}
		}
	}
	if v >= 4 {
		r.Campaign = d.str()
	}
	if v >= 5 {
		r.IdentitySource = d.str()
		r.IdentityReason = d.str()
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s: truncated or malformed", errCorrupt, id)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", errCorrupt, id, len(d.b))
	}
	if r.Status == 0 || r.Status >= statusEnd || r.Verdict >= verdictEnd || r.Band >= bandEnd {
		return nil, fmt.Errorf("%w: %s: bad status or verdict", errCorrupt, id)
	}
	return r, nil
}
