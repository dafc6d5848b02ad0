package campaign

import (
	"crypto/sha256"
	"math/bits"
	"sync"
)

// Fingerprint parameters. They are part of the persisted format: a change
// needs a new encoding version (see encode.go).
const (
	// ShingleWords is the number of consecutive normalised words in one
	// shingle.
	ShingleWords = 5
	// NumHashes is the length of a signature: the bins of one
	// permutation hashing (docs/campaigns.md).
	NumHashes = 64
	// Bands and Rows split the signature for locality-sensitive hashing:
	// two texts become candidates when all Rows values of at least one of
	// the Bands bands agree. Bands*Rows == NumHashes. The resulting curve
	// is in docs/campaigns.md.
	Bands = 16
	Rows  = NumHashes / Bands
	// MinShingles is the fewest shingles a text needs for a MinHash
	// signature. Below it the text is short (see Fingerprint.Exact).
	MinShingles = 8
)

// Digest is the SHA-256 digest of an attachment's decoded content.
type Digest [sha256.Size]byte

// AttachmentDigest returns the digest of an attachment's decoded content.
func AttachmentDigest(content []byte) Digest { return sha256.Sum256(content) }

// Input is what Compute needs from a message. The caller decodes the
// message: Text is the text of its inline parts, with HTML already turned
// into text, and Attachments the digests of its attachment parts.
type Input struct {
	// Subject is the decoded Subject header field.
	Subject string
	// Text is the decoded text of the inline parts, HTML as text.
	Text string
	// PerRecipient lists words that vary per recipient and must not take
	// part in the fingerprint: the local parts and display names of the
	// message's recipients (To, Cc and the envelope). Any string will do;
	// it is split into words like the text.
	PerRecipient []string
	// Attachments are the digests of the attachment parts (parts with
	// Content-Disposition: attachment, or non-text parts that are not
	// inline images: a company logo in every signature is not a
	// campaign).
	Attachments []Digest
}

// Fingerprint is the fingerprint of one message. The zero value is an empty
// fingerprint, which Store.Observe records nowhere.
type Fingerprint struct {
	// Sig is the MinHash signature of the text's shingles, 16 bits per
	// value (b-bit MinHash: two unrelated values agree with probability
	// 1/65536, which adds nothing measurable to the similarity estimate);
	// valid when HasSig.
	Sig    [NumHashes]uint16
	HasSig bool
	// Exact is a 64-bit hash of the normalised word sequence of a short
	// text (fewer than MinShingles shingles) that holds at least one link;
	// valid when HasExact. A short text without a link ("Thanks, see you
	// tomorrow") is too common across unrelated senders to name a
	// campaign, and gets no text fingerprint at all.
	Exact    uint64
	HasExact bool
	// Attachments are the attachment digests, as given, at most
	// MaxAttachments of them.
	Attachments []Digest
	// Words is the number of normalised words the text gave.
	Words int
	// Quoted reports that the text fingerprint covers quoted text: the
	// message's own text was too short for a signature. Such a message
	// joins campaigns and is blocked by confirmed ones, but its user does
	// not count towards SignalUsers (many people replying to one post,
	// quoting it, are not a botnet).
	Quoted bool
}

// MaxAttachments is the most attachment digests a fingerprint keeps.
const MaxAttachments = 16

// Empty reports whether the fingerprint carries nothing to match on.
func (f *Fingerprint) Empty() bool {
	return !f.HasSig && !f.HasExact && len(f.Attachments) == 0
}

// Similarity estimates the Jaccard similarity of the shingle sets of two
// fingerprints from their signatures: the share of agreeing values. It is 0
// unless both have a signature.
func Similarity(a, b *Fingerprint) float64 {
	if !a.HasSig || !b.HasSig {
		return 0
	}
	return float64(agree(&a.Sig, &b.Sig)) / NumHashes
}

func agree(a, b *[NumHashes]uint16) int {
	n := 0
	for i := range a {
		if a[i] == b[i] {
			n++
		}
	}
	return n
}

func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// mix64 is a 64-bit finaliser (the one of splitmix64).
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// hashBytes is FNV-1a 64 followed by mix64.
func hashBytes(b []byte) uint64 { return mix64(fnvBytes(fnvOffset, b)) }

// The FNV-1a 64 offset basis and prime.
const (
	fnvOffset uint64 = 0xcbf29ce484222325
	fnvPrime  uint64 = 0x100000001b3
)

// fnvBytes continues the FNV-1a 64 hash h with b.
func fnvBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

// computer holds the reusable state of one Compute call.
type computer struct {
	sc scanner
	// last holds the hashes of the ShingleWords-1 words before the
	// next one, oldest first.
	last  [ShingleWords - 1]uint64
	n     int // words seen
	sig   [NumHashes]uint64
	exact uint64
}

var computers = sync.Pool{New: func() any { return new(computer) }}

// Compute fingerprints a message. It reads at most MaxTextBytes of subject
// and text together, allocates nothing per word, and is safe for
// concurrent use; call it outside any lock.
//
// Quoted text (lines starting with '>', and everything after a reply
// attribution such as "On ... wrote:" or an "-----Original Message-----"
// line) is left out when the rest of the text is long enough for a
// signature: replies that quote one post are not a campaign. When it is
// not, the whole text is fingerprinted and the result is marked Quoted.
func Compute(in Input) Fingerprint {
	c := computers.Get().(*computer)
	defer computers.Put(c)
	c.sc.setPerRecipient(in.PerRecipient)
	text := in.Text
	if room := MaxTextBytes - min(len(in.Subject), MaxTextBytes); len(text) > room {
		text = text[:room]
	}
	own, quoted := ownText(text)
	f := c.run(in.Subject, own)
	if quoted && !f.HasSig {
		if g := c.run(in.Subject, text); g.HasSig || g.HasExact {
			f = g
			f.Quoted = true
		}
	}
	if len(in.Attachments) > 0 {
		n := min(len(in.Attachments), MaxAttachments)
		f.Attachments = append([]Digest(nil), in.Attachments[:n]...)
	}
	return f
}

// run fingerprints subject and text.
func (c *computer) run(subject, text string) Fingerprint {
	c.sc.links = 0
	c.n = 0
	c.exact = 0xcbf29ce484222325
	for i := range c.sig {
		c.sig[i] = ^uint64(0)
	}
	c.scan(subject)
	c.scan(text)

	var f Fingerprint
	f.Words = c.n
	shingles := c.n - ShingleWords + 1
	switch {
	case shingles >= MinShingles && c.densify():
		f.HasSig = true
		for i, v := range c.sig {
			// The low bits: the high bits of a minimum are biased to zero.
			f.Sig[i] = uint16(v)
		}
	case c.n > 0 && c.sc.links > 0:
		f.HasExact = true
		f.Exact = mix64(c.exact ^ uint64(c.n))
	}
	return f
}

// word takes the next normalised word: it feeds the exact hash and, once
// ShingleWords words are in the window, hashes the shingle they form into
// the signature. It is scanner.token's emit for the tokens computer.scan
// hands over.
func (c *computer) word(_ []byte, h uint64) {
	c.exact = (c.exact ^ h) * 0x100000001b3
	w0, w1, w2, w3 := c.last[0], c.last[1], c.last[2], c.last[3]
	c.last = [...]uint64{w1, w2, w3, h}
	if c.n++; c.n < ShingleWords {
		return
	}
	// The shingle hash is order-sensitive, oldest word first; the steps
	// are written out, one per word of the window.
	const k = 0x9e3779b97f4a7c15
	x := uint64(0x736869676c65) // "shingle"
	x = (bits.RotateLeft64(x, 23) ^ w0) * k
	x = (bits.RotateLeft64(x, 23) ^ w1) * k
	x = (bits.RotateLeft64(x, 23) ^ w2) * k
	x = (bits.RotateLeft64(x, 23) ^ w3) * k
	x = (bits.RotateLeft64(x, 23) ^ h) * k
	// One permutation hashing: the shingle's hash picks one of the
	// NumHashes bins and keeps its minimum there, one comparison per
	// shingle instead of NumHashes; run fills the bins no shingle fell in.
	x = mix64(x)
	b := x % NumHashes
	if v := x / NumHashes; v < c.sig[b] {
		c.sig[b] = v
	}
}

// The shingle hash above is written out for windows of five words.
var _ [ShingleWords - 5]struct{}
var _ [5 - ShingleWords]struct{}

// densify fills the bins no shingle fell in from the nearest filled bin to
// their right, each with a value of its own (rotation densification), so
// that two texts sharing most shingles still agree on most bins. It
// reports false when every bin is empty.
func (c *computer) densify() bool {
	for i := range NumHashes {
		if c.sig[i] != ^uint64(0) {
			break
		}
		if i == NumHashes-1 {
			return false
		}
	}
	for i := range NumHashes {
		if c.sig[i] != ^uint64(0) {
			continue
		}
		for k := 1; k < NumHashes; k++ {
			if v := c.sig[(i+k)%NumHashes]; v != ^uint64(0) && v < 1<<58 {
				c.sig[i] = 1<<58 + mix64(v+uint64(k)*0x9e3779b97f4a7c15)%(1<<58)
				break
			}
		}
	}
	return true
}

// bandKeys returns the LSH key of each band of sig: a 32-bit hash of the
// band's number and its Rows values. Keys of different bands differ by
// construction only with high probability; a collision costs one extra
// candidate, which the full comparison then rejects.
func bandKeys(sig *[NumHashes]uint16) (keys [Bands]uint32) {
	for b := range Bands {
		h := uint64(b+1) * 0x9e3779b97f4a7c15
		for r := range Rows {
			h = (h ^ uint64(sig[b*Rows+r])) * 0xff51afd7ed558ccd
			h = bits.RotateLeft64(h, 29)
		}
		keys[b] = uint32(mix64(h))
		if keys[b] == 0 {
			keys[b] = 1 // 0 marks an empty cell of bandIndex
		}
	}
	return keys
}
