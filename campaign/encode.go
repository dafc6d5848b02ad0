package campaign

import (
	"encoding/binary"
	"fmt"
)

// The encoding of a store's state (docs/campaigns.md, "Persistence"):
//
//	magic "OGCAMP" version(1 byte)
//	uvarint campaigns, each:
//	  id, first, last, messages, recipients, blocked, 3 verdict counts,
//	  sampleTx, confirmed(1 byte), confirmedAt, confirmedBy, usersSeen,
//	  identsSeen,
//	  uvarint users, each (least recent first): user, last, identity, tx
//	  uvarint identities, each (least recent first): identity, user,
//	    messages, recipients, last, tx
//	uvarint recent entries, then uvarint confirmed entries, each (oldest
//	first): campaign index, at, kind(1 byte), [64 x uint16 LE signature],
//	[uint64 LE exact hash], uvarint attachments, 32 bytes each
//
// Strings are a uvarint length and bytes; times are varint Unix
// nanoseconds; counts are uvarints. The version changes with the format or
// with any fingerprint parameter (shingle size, hash constants, bands).
const (
	magic         = "OGCAMP"
	formatVersion = 1
)

// Encode returns the store's state for Decode, for example to keep it in
// bbolt across restarts. It holds the store's lock while it copies
// everything: O(entries + campaigns + tracked members). Its size is bounded
// by the options: about 140 bytes per recent or confirmed fingerprint,
// plus the campaigns and their tracked members.
func (s *Store) Encode() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, 0, 64+(s.recent.len()+s.confirmed.len())*(NumHashes*2+16)+len(s.byID)*160)
	b = append(b, magic...)
	b = append(b, formatVersion)

	b = binary.AppendUvarint(b, uint64(len(s.byID)))
	n := uint32(0)
	for c := s.head; c != nil; c = c.next {
		c.enc = n
		n++
		b = appendString(b, c.id)
		b = binary.AppendVarint(b, c.first)
		b = binary.AppendVarint(b, c.last)
		b = binary.AppendUvarint(b, c.messages)
		b = binary.AppendUvarint(b, c.recipients)
		b = binary.AppendUvarint(b, c.blocked)
		for _, v := range c.verdicts {
			b = binary.AppendUvarint(b, v)
		}
		b = appendString(b, c.sampleTx)
		b = appendBool(b, c.confirmed)
		b = binary.AppendVarint(b, c.confirmedAt)
		b = appendString(b, c.confirmedBy)
		b = binary.AppendUvarint(b, c.usersSeen)
		b = binary.AppendUvarint(b, c.identsSeen)
		b = binary.AppendUvarint(b, uint64(c.users.n))
		for e := c.users.head; e != nil; e = e.next {
			b = appendString(b, e.key)
			b = binary.AppendVarint(b, e.v.last)
			b = appendString(b, e.v.identity)
			b = appendString(b, e.v.tx)
		}
		b = binary.AppendUvarint(b, uint64(c.idents.n))
		for e := c.idents.head; e != nil; e = e.next {
			b = appendString(b, e.key)
			b = appendString(b, e.v.user)
			b = binary.AppendUvarint(b, e.v.messages)
			b = binary.AppendUvarint(b, e.v.recipients)
			b = binary.AppendVarint(b, e.v.last)
			b = appendString(b, e.v.tx)
		}
	}
	for _, r := range []*ring{&s.recent, &s.confirmed} {
		b = binary.AppendUvarint(b, uint64(r.len()))
		for q := r.head; q < r.tail; q++ {
			e := r.at(r.slot(q))
			b = binary.AppendUvarint(b, uint64(e.c.enc))
			b = binary.AppendVarint(b, e.at)
			b = append(b, e.kind)
			if e.kind&kindSig != 0 {
				for _, v := range e.sig {
					b = binary.LittleEndian.AppendUint16(b, v)
				}
			}
			if e.kind&kindExact != 0 {
				b = binary.LittleEndian.AppendUint64(b, e.exact)
			}
			b = binary.AppendUvarint(b, uint64(len(e.attach)))
			for _, d := range e.attach {
				b = append(b, d[:]...)
			}
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// decoder reads the encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad unsigned number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items that take at least minBytes each, so that a
// forged count cannot make the decoder loop past its input.
func (d *decoder) count(minBytes int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minBytes) {
		d.fail("count exceeds the data")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	v := d.bytes(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > maxString {
		d.fail("string too long")
		return ""
	}
	return string(d.bytes(int(n)))
}

// Decode loads state written by Encode into an empty store (one that has
// observed nothing), applying this store's bounds: the oldest fingerprints
// beyond MaxEntries or MaxConfirmed and the least recent members beyond
// MaxUsers and MaxIdentities are dropped, and fingerprints past Window or
// ConfirmedTTL leave at the next operation. It reads only what data holds:
// time and memory are linear in len(data). On error the store is unchanged
// and the error wraps ErrCorrupt.
func (s *Store) Decode(data []byte) error {
	t, err := New(s.opt)
	if err != nil {
		return err
	}
	if err := t.decode(data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recent.len() != 0 || s.confirmed.len() != 0 || len(s.byID) != 0 {
		return ErrNotEmpty
	}
	s.recent, s.confirmed, s.byID, s.head, s.tail = t.recent, t.confirmed, t.byID, t.head, t.tail
	return nil
}

func (s *Store) decode(data []byte) error {
	d := &decoder{b: data}
	if string(d.bytes(len(magic))) != magic {
		return fmt.Errorf("%w: not a campaign store", ErrCorrupt)
	}
	if v := d.byte1(); v != formatVersion {
		return fmt.Errorf("%w: format version %d, want %d", ErrCorrupt, v, formatVersion)
	}
	n := d.count(16)
	list := make([]*campaign, 0, n)
	for range n {
		c := &campaign{id: d.string()}
		c.first, c.last = d.varint(), d.varint()
		c.messages, c.recipients, c.blocked = d.uvarint(), d.uvarint(), d.uvarint()
		for i := range c.verdicts {
			c.verdicts[i] = d.uvarint()
		}
		c.sampleTx = d.string()
		c.confirmed = d.byte1() != 0
		c.confirmedAt = d.varint()
		c.confirmedBy = d.string()
		c.usersSeen, c.identsSeen = d.uvarint(), d.uvarint()
		for range d.count(4) {
			key := d.string()
			last, identity, tx := d.varint(), d.string(), d.string()
			if d.err != nil || c.users.get(key) != nil {
				d.fail("duplicate user")
				break
			}
			e, _ := c.users.add(key, s.opt.MaxUsers)
			e.v = userRec{last: last, identity: identity, tx: tx}
		}
		for range d.count(6) {
			key := d.string()
			v := identRec{user: d.string(), messages: d.uvarint(), recipients: d.uvarint(), last: d.varint(), tx: d.string()}
			if d.err != nil || c.idents.get(key) != nil {
				d.fail("duplicate identity")
				break
			}
			e, _ := c.idents.add(key, s.opt.MaxIdentities)
			e.v = v
		}
		if d.err != nil {
			return d.err
		}
		if len(c.id) != 16 || s.byID[c.id] != nil {
			return fmt.Errorf("%w: bad or duplicate campaign id %q", ErrCorrupt, c.id)
		}
		s.byID[c.id] = c
		s.touch(c)
		list = append(list, c)
	}
	for k, r := range []*ring{&s.recent, &s.confirmed} {
		for range d.count(11) {
			i := d.uvarint()
			e := entry{at: d.varint(), kind: d.byte1()}
			if d.err != nil || i >= uint64(len(list)) || e.kind&^(kindSig|kindExact) != 0 || e.kind == kindSig|kindExact {
				d.fail("bad entry")
				return d.err
			}
			e.c = list[i]
			if e.kind&kindSig != 0 {
				raw := d.bytes(NumHashes * 2)
				for j := range e.sig {
					if raw != nil {
						e.sig[j] = binary.LittleEndian.Uint16(raw[2*j:])
					}
				}
			}
			if e.kind&kindExact != 0 {
				if raw := d.bytes(8); raw != nil {
					e.exact = binary.LittleEndian.Uint64(raw)
				}
			}
			na := d.count(32)
			if na > MaxAttachments {
				d.fail("too many attachments")
			}
			for range na {
				var dg Digest
				copy(dg[:], d.bytes(32))
				e.attach = append(e.attach, dg)
			}
			if d.err != nil {
				return d.err
			}
			if e.kind == 0 && len(e.attach) == 0 {
				return fmt.Errorf("%w: empty entry", ErrCorrupt)
			}
			if k == 0 {
				e.c.refs++
				for r.len() >= r.max {
					r.pop().refs-- // the final sweep drops campaigns left without entries
				}
				seq := r.push(e)
				copy(e.c.lastSeqs[1:], e.c.lastSeqs[:Exemplars-1])
				e.c.lastSeqs[0] = seq + 1
			} else {
				e.c.pins++
				for r.len() >= r.max {
					r.pop().pins--
				}
				r.push(e)
			}
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	// A campaign no fingerprint refers to is gone, as it would be in the
	// running store.
	for _, c := range list {
		if c.refs <= 0 && c.pins <= 0 && s.byID[c.id] == c {
			s.unlinkCampaign(c)
			delete(s.byID, c.id)
		}
	}
	return nil
}
