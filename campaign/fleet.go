package campaign

import (
	"encoding/binary"
	"errors"
	"time"
)

// Several stores, one fleet (docs/campaigns.md, "Several nodes"): campaign
// ids are local to a store, so a confirmation travels between stores as
// fingerprints. The store where an operator confirms a campaign hands out
// its exemplars (ExemplarFingerprints); every other store confirms the
// campaign those fingerprints match there, or a new one holding them
// (ConfirmMessage), and withdraws a confirmation the same way
// (UnconfirmMatching).

// maxShared bounds the fingerprints ExemplarFingerprints returns.
const maxShared = 4 * Exemplars

// ExemplarFingerprints returns the fingerprints that stand for campaign
// id: its confirmed ones first, then its most recent ones, at most
// 4*Exemplars. Another store given them by ConfirmMessage recognises the
// same copies. Cost: a walk of the confirmed set (MaxConfirmed entries).
func (s *Store) ExemplarFingerprints(id string) ([]Fingerprint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byID[id]
	if c == nil {
		return nil, ErrNotFound
	}
	var out []Fingerprint
	r := &s.confirmed
	for q := r.head; q < r.tail && len(out) < maxShared; q++ {
		if e := r.at(r.slot(q)); e.c == c {
			out = append(out, e.fingerprint())
		}
	}
	for _, q := range c.lastSeqs {
		if len(out) >= maxShared {
			break
		}
		if q == 0 || !s.recent.live(q-1) {
			continue
		}
		out = append(out, s.recent.at(s.recent.slot(q-1)).fingerprint())
	}
	return out, nil
}

// Covers reports whether the confirmed set already matches fp: a
// ConfirmMessage of fp would add nothing to it.
func (s *Store) Covers(fp *Fingerprint) bool {
	if fp.Empty() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.now(time.Time{}))
	_, _, covered := s.find(fp)
	return covered
}

// UnconfirmMatching withdraws the confirmation of the confirmed campaign
// that fp matches, as Unconfirm does by id, and returns its id; ""
// when fp matches no confirmed campaign.
func (s *Store) UnconfirmMatching(fp *Fingerprint) string {
	if fp.Empty() {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, _, covered := s.find(fp)
	if c == nil || !covered || !c.confirmed {
		return ""
	}
	c.confirmed, c.confirmedAt, c.confirmedBy = false, 0, ""
	return c.id
}

// fingerprint is the Fingerprint an entry stores.
func (e *entry) fingerprint() Fingerprint {
	var fp Fingerprint
	if e.kind&kindSig != 0 {
		fp.Sig, fp.HasSig = e.sig, true
	}
	if e.kind&kindExact != 0 {
		fp.Exact, fp.HasExact = e.exact, true
	}
	fp.Attachments = append([]Digest(nil), e.attach...)
	return fp
}

// The encoding of one fingerprint (AppendBinary):
//
//	version(1 byte) flags(1 byte: 1 signature, 2 exact, 4 quoted)
//	[64 x uint16 LE signature] [uint64 LE exact hash]
//	uvarint attachments (at most MaxAttachments), 32 bytes each
//	uvarint words
const fingerprintVersion = 1

// AppendBinary appends fp's encoding to b.
func (fp *Fingerprint) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if fp.HasSig {
		flags |= 1
	}
	if fp.HasExact {
		flags |= 2
	}
	if fp.Quoted {
		flags |= 4
	}
	b = append(b, fingerprintVersion, flags)
	if fp.HasSig {
		for _, v := range fp.Sig {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
	}
	if fp.HasExact {
		b = binary.LittleEndian.AppendUint64(b, fp.Exact)
	}
	n := min(len(fp.Attachments), MaxAttachments)
	b = binary.AppendUvarint(b, uint64(n))
	for _, d := range fp.Attachments[:n] {
		b = append(b, d[:]...)
	}
	return binary.AppendUvarint(b, uint64(max(fp.Words, 0))), nil
}

// MarshalBinary returns fp's encoding.
func (fp *Fingerprint) MarshalBinary() ([]byte, error) {
	return fp.AppendBinary(make([]byte, 0, 2+2*NumHashes+8+1+32*len(fp.Attachments)+3))
}

// errFingerprint is the error of a damaged fingerprint encoding.
var errFingerprint = errors.New("campaign: damaged fingerprint encoding")

// UnmarshalBinary decodes what MarshalBinary wrote. The whole input must
// be one fingerprint.
func (fp *Fingerprint) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != fingerprintVersion || b[1]&^7 != 0 {
		return errFingerprint
	}
	flags := b[1]
	b = b[2:]
	var out Fingerprint
	if flags&1 != 0 {
		if len(b) < 2*NumHashes {
			return errFingerprint
		}
		for i := range out.Sig {
			out.Sig[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		out.HasSig = true
		b = b[2*NumHashes:]
	}
	if flags&2 != 0 {
		if len(b) < 8 {
			return errFingerprint
		}
		out.Exact, out.HasExact = binary.LittleEndian.Uint64(b), true
		b = b[8:]
	}
	out.Quoted = flags&4 != 0
	n, k := minimalUvarint(b)
	if k <= 0 || n > MaxAttachments || uint64(len(b)-k) < n*32 {
		return errFingerprint
	}
	b = b[k:]
	if n > 0 {
		out.Attachments = make([]Digest, n)
		for i := range out.Attachments {
			copy(out.Attachments[i][:], b[:32])
			b = b[32:]
		}
	}
	w, k := minimalUvarint(b)
	if k <= 0 || k != len(b) || w > 1<<31 {
		return errFingerprint
	}
	out.Words = int(w)
	*fp = out
	return nil
}

// minimalUvarint is binary.Uvarint that also refuses a longer encoding
// than needed, so that one fingerprint has one encoding.
func minimalUvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 1 && b[k-1] == 0 {
		return 0, 0
	}
	return v, k
}
