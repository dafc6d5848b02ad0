package content

import (
	"math/bits"
	"slices"
	"unicode"
	"unicode/utf8"
)

// TokenizerVersion names the feature extraction below. A model records the
// version it was trained with, and Load refuses a model of another version:
// its feature ids would mean nothing.
const TokenizerVersion = 2

// Bounds on the work of one extraction, whatever the message holds.
const (
	// MaxTextBytes is how much of the body text is tokenised; spam states
	// its business early, and the rest of a huge body adds time, not
	// evidence.
	MaxTextBytes = 128 << 10
	// MaxSubjectBytes is how much of the subject is tokenised.
	MaxSubjectBytes = 1 << 10
	// MaxHosts is how many link hosts give features.
	MaxHosts = 64
	// maxTokenRunes is the longest token kept whole; longer ones are
	// folded to their first foldRunes runes.
	maxTokenRunes = 20
	foldRunes     = 12
)

// Feature prefixes: each kind of feature hashes with its own first byte, so
// that the word "paypal" in the subject, in the body and as a link host
// are three features.
const (
	prefixWord      = 'w'
	prefixSubject   = 's'
	prefixBigram    = 'b'
	prefixHost      = 'h'
	prefixDomain    = 'd'
	prefixLinks     = 'k'
	prefixStructure = 'm'
	prefixLong      = 'l' // a word longer than maxTokenRunes, folded
	prefixNumber    = 'n' // an all-digit word, by its length
	prefixMixed     = 'x' // a word mixing Latin with look-alike letters
)

// Doc is the part of a message the model reads. Headers other than the
// subject are left out on purpose: an outbound filter sees the sending
// MTA's own Received chain, and a model that learnt from the training
// corpus's headers would learn where the corpus was collected, not what
// spam says (docs/content-model.md).
type Doc struct {
	// Subject is the decoded subject.
	Subject string
	// Body is the text of the inline text parts, HTML turned into text.
	Body string
	// Hosts are the lower-case hosts of the message's links, one entry
	// per link.
	Hosts []string
	// Structure holds MIME-structure tokens such as {"ct",
	// "application/pdf"} or {"html-only", ""}, made by the caller.
	Structure []Token
	// Registrable returns the registrable domain of a host ("a.b.co.uk"
	// gives "b.co.uk"); nil uses the host itself.
	Registrable func(host string) string
}

// Token is a structure token: a kind and an optional value. It is hashed
// as "kind:value" (or "kind" alone) without building that string.
type Token struct {
	Kind, Value string
}

// Features is the sorted, distinct set of feature ids of one document.
type Features []uint32

// Extractor turns documents into features. Its buffers are reused between
// calls, so an Extractor is not safe for concurrent use: take one from a
// pool per goroutine. The zero value is ready to use.
type Extractor struct {
	ids     []uint32 // the distinct ids found so far
	seen    idSet    // the ids in ids
	tmp     []uint32 // scratch for sorting ids
	generic []uint32
	runes   []rune
	// What put learnt of the runes in runes while they came, so that a
	// word of ASCII runes needs no second pass: whether one is not ASCII
	// (then word reads them again), how many are digits, the word's hash
	// and the hash of it folded as a long word (of its first foldRunes).
	wide             bool
	digits           int
	hash, hashLong   hasher
	hash0, hashLong0 hasher // the hashes of an empty word
	prev             []rune // the previous body word's text, kept only for Names
	prevID           uint32 // the previous body word's id, 0 for none
	// Names, when set, is called with every feature's id and a readable
	// name, for explanations. It makes extraction allocate; leave it nil
	// on the hot path.
	Names func(id uint32, name string)
}

// FNV-1a, 32 bits: cheap, allocation-free and stable across releases,
// which a feature id in an embedded model must be.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

type hasher uint32

func newHasher(prefix byte) hasher { return hasher(fnvOffset).byte(prefix) }

func (h hasher) byte(b byte) hasher { return (h ^ hasher(b)) * fnvPrime }

func (h hasher) rune(r rune) hasher {
	if r < utf8.RuneSelf {
		return h.byte(byte(r))
	}
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	for _, b := range buf[:n] {
		h = h.byte(b)
	}
	return h
}

func (h hasher) string(s string) hasher {
	for i := 0; i < len(s); i++ {
		h = h.byte(s[i])
	}
	return h
}

// ID returns the feature id of a prefix and a name, as Extract computes it;
// for tests and tools.
func ID(prefix byte, name string) uint32 { return uint32(newHasher(prefix).string(name)) }

// Extract returns the features of d. The returned slice is owned by e and
// valid until its next call.
func (e *Extractor) Extract(d *Doc) Features {
	e.ids = e.ids[:0]
	e.seen.reset()
	e.generic = e.generic[:0]
	e.prev, e.prevID = e.prev[:0], 0
	e.text(prefixSubject, clip(d.Subject, MaxSubjectBytes), false)
	e.prev, e.prevID = e.prev[:0], 0
	e.text(prefixWord, clip(d.Body, MaxTextBytes), true)
	hosts := d.Hosts
	if len(hosts) > MaxHosts {
		hosts = hosts[:MaxHosts]
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		e.add(newHasher(prefixHost).string(h), prefixHost, h)
		reg := h
		if d.Registrable != nil {
			reg = d.Registrable(h)
		}
		e.add(newHasher(prefixDomain).string(reg), prefixDomain, reg)
	}
	bucket := linkBucket(len(d.Hosts))
	h := newHasher(prefixLinks).string(bucket)
	e.add(h, prefixLinks, bucket)
	e.generic = append(e.generic, uint32(h))
	for _, t := range d.Structure {
		h := newHasher(prefixStructure).string(t.Kind)
		if t.Value != "" {
			h = h.byte(':').string(t.Value)
		}
		e.push(uint32(h))
		e.generic = append(e.generic, uint32(h))
		if e.Names != nil {
			name := t.Kind
			if t.Value != "" {
				name += ":" + t.Value
			}
			e.Names(uint32(h), "m:"+name)
		}
	}
	// The ids are distinct already: sorting is all that is left.
	e.ids, e.tmp = sortIDs(e.ids, e.tmp)
	return e.ids
}

// push adds id to the features unless it is there already. Text repeats
// its words, so keeping them distinct as they come leaves fewer to sort.
func (e *Extractor) push(id uint32) {
	if e.seen.add(id, e.ids) {
		e.ids = append(e.ids, id)
	}
}

// idSet is a set of feature ids: open addressing with linear probing over
// a table whose slots carry the round they were written in (round<<32 |
// id), so that emptying the set is starting a new round. It grows by
// doubling when half full.
type idSet struct {
	slots []uint64
	mask  uint32 // len(slots)-1 of the part in use
	round uint64
	n     int
}

// minSetSlots is the size of the table a set starts each round with.
const minSetSlots = 1 << 10

// reset empties the set.
func (s *idSet) reset() {
	if s.slots == nil {
		s.slots = make([]uint64, minSetSlots)
	}
	s.mask = minSetSlots - 1
	s.n = 0
	s.next()
}

// next starts a new round: every slot is empty.
func (s *idSet) next() {
	if s.round++; s.round == 1<<32 {
		// Rounds wrapped: slots of an old round could pass for this one.
		clear(s.slots)
		s.round = 1
	}
}

// add inserts id and reports whether it was not there. all holds every
// id added this round (the caller's list), for growing.
func (s *idSet) add(id uint32, all []uint32) bool {
	if 2*(s.n+1) > int(s.mask)+1 {
		s.grow(all)
	}
	want := s.round<<32 | uint64(id)
	for i := slot(id) & s.mask; ; i = (i + 1) & s.mask {
		switch v := s.slots[i]; {
		case v == want:
			return false
		case v>>32 != s.round:
			s.slots[i] = want
			s.n++
			return true
		}
	}
}

// slot is where id's probe starts, before the mask.
func slot(id uint32) uint32 { return bits.RotateLeft32(id*0x9e3779b1, 16) }

// hit reports whether id is in the set, in the first slot it probes: the
// common case of a text repeating its words, answered without a call.
// false says nothing.
func (s *idSet) hit(id uint32) bool {
	i := int(slot(id) & s.mask)
	return i < len(s.slots) && s.slots[i] == s.round<<32|uint64(id)
}

// grow doubles the table in use (allocating when the table is too small)
// and puts all back in it, in a new round.
func (s *idSet) grow(all []uint32) {
	size := 2 * (int(s.mask) + 1)
	if size > len(s.slots) {
		s.slots = make([]uint64, size)
		s.round = 0
	}
	s.mask = uint32(size - 1)
	s.n = 0
	s.next()
	for _, id := range all {
		s.add(id, nil)
	}
}

// sortIDs sorts ids, using tmp (grown as needed) as scratch, and returns
// both. Feature ids are uniform hashes, so above a few hundred a radix
// sort (four passes of a byte) beats comparison sorting.
func sortIDs(ids, tmp []uint32) ([]uint32, []uint32) {
	if len(ids) < 256 {
		slices.Sort(ids)
		return ids, tmp
	}
	tmp = slices.Grow(tmp[:0], len(ids))[:len(ids)]
	src, dst := ids, tmp
	var count [256]int
	for shift := 0; shift < 32; shift += 8 {
		count = [256]int{}
		for _, id := range src {
			count[byte(id>>shift)]++
		}
		pos := 0
		for b, c := range count {
			count[b] = pos
			pos += c
		}
		for _, id := range src {
			b := byte(id >> shift)
			dst[count[b]] = id
			count[b]++
		}
		src, dst = dst, src
	}
	// Four passes: the sorted ids are back in ids.
	return ids, tmp
}

// Generic returns the features of the last Extract that describe the
// message's shape rather than its content (link count, MIME structure).
// They are shared by most messages, so Learner.Learn leaves them alone: a
// lesson about one message's words must not move every message's score.
// The slice is sorted, owned by e and valid until its next call.
func (e *Extractor) Generic() Features {
	slices.Sort(e.generic)
	e.generic = slices.Compact(e.generic)
	return e.generic
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// linkBucket groups link counts so that "many links" is one feature.
func linkBucket(n int) string {
	switch {
	case n == 0:
		return "0"
	case n == 1:
		return "1"
	case n <= 3:
		return "2-3"
	case n <= 7:
		return "4-7"
	case n <= 15:
		return "8-15"
	}
	return "16+"
}

func (e *Extractor) add(h hasher, prefix byte, name string) {
	id := uint32(h)
	e.push(id)
	if e.Names != nil {
		e.Names(id, string(prefix)+":"+name)
	}
}

// addRunes adds a CJK unigram (b == 0) or bigram, naming it only when
// names are asked for.
func (e *Extractor) addRunes(h hasher, prefix byte, a, b rune) {
	e.push(uint32(h))
	if e.Names != nil {
		name := string(a)
		if b != 0 {
			name += string(b)
		}
		e.Names(uint32(h), string(prefix)+":"+name)
	}
}

// Character classes of the tokeniser.
const (
	clsOther  = iota
	clsWord   // a letter, digit or combining mark
	clsJoiner // ' . - $ : joins two word runs into one token
	clsIgnore // zero-width characters, removed as if absent
	clsCJK    // a Han, kana or Hangul character: tokenised as bigrams
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			t[c] = clsWord
		case c == '\'' || c == '.' || c == '-' || c == '$':
			t[c] = clsJoiner
		}
	}
	return t
}()

func runeClass(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF || r == 0x00AD:
		return clsIgnore
	case r == 0x2019: // a typographic apostrophe joins like '
		return clsJoiner
	case unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r):
		return clsCJK
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
		return clsWord
	}
	return clsOther
}

// text tokenises s: word tokens (with prefix), and for the body bigrams of
// adjacent words; CJK runs become character bigrams.
func (e *Extractor) text(prefix byte, s string, bigrams bool) {
	e.hash0, e.hashLong0 = newHasher(prefix), newHasher(prefixLong).byte(prefix)
	e.clearWord()
	var join rune // a joiner seen after a word run, kept if a run follows
	var cjkPrev rune
	cjkRun := 0
	endCJK := func() {
		if cjkRun == 1 {
			e.addRunes(newHasher(prefix).rune(cjkPrev), prefix, cjkPrev, 0)
		}
		cjkPrev, cjkRun = 0, 0
	}
	// Without names to give, ASCII words and separators met with no word
	// under way are read by asciiRun.
	fast := e.Names == nil
	for i := 0; i < len(s); {
		if fast && cjkRun == 0 && len(e.runes) == 0 {
			if j := e.asciiRun(s, i, prefix, bigrams); j != i {
				i = j
				continue
			}
		}
		r, size := rune(s[i]), 1
		if r < utf8.RuneSelf && asciiClass[r] == clsWord && cjkRun == 0 {
			// The common case, a letter or digit of ASCII text, without
			// the general path's decoding and class lookup.
			i++
			if join != 0 {
				e.put(join)
				join = 0
			}
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			e.put(r)
			continue
		}
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		switch runeClass(r) {
		case clsWord:
			if cjkRun > 0 {
				endCJK()
			}
			if join != 0 {
				e.put(join)
				join = 0
			}
			e.put(unicode.ToLower(r))
			continue
		case clsIgnore:
			continue
		case clsJoiner:
			if join == 0 && len(e.runes) > 0 && (len(e.runes) > 1 || e.runes[0] != '$') {
				if r == 0x2019 {
					r = '\''
				}
				join = r
				continue
			}
			join = 0
			e.word(prefix, bigrams)
			if r == '$' {
				e.put('$')
			}
			continue
		case clsCJK:
			join = 0
			e.word(prefix, bigrams)
			if cjkPrev != 0 {
				e.addRunes(newHasher(prefix).rune(cjkPrev).rune(r), prefix, cjkPrev, r)
			}
			cjkPrev = r
			cjkRun++
			continue
		}
		join = 0
		e.word(prefix, bigrams)
		if cjkRun > 0 {
			endCJK()
		}
	}
	e.word(prefix, bigrams)
	if cjkRun > 0 {
		endCJK()
	}
}

// wordByte maps the ASCII letters and digits to their lower case and
// every other byte to 0.
var wordByte = func() (t [256]byte) {
	for c := range utf8.RuneSelf {
		if asciiClass[c] == clsWord {
			t[c] = byte(unicode.ToLower(rune(c)))
		}
	}
	return t
}()

// asciiRun is text's path for ASCII text: it starts where no word is
// under way (e.runes is empty, no CJK run is open) and no names are asked
// for, and returns where text goes on. It skips ASCII separators and
// reads each word of ASCII letters and digits, with the joiners between
// two of them, hashing it as put would. When the word ends with the text,
// at an ASCII separator, or at a joiner that one of those follows, it
// adds the word's features as word would, the separator read; otherwise
// (a rune of more than one byte, a joiner after a joiner) it puts the
// word in e.runes and leaves the rest to text's general path, as it does
// a joiner or a multi-byte rune between words.
func (e *Extractor) asciiRun(s string, i int, prefix byte, bigrams bool) int {
	prev := e.prevID
	for i < len(s) {
		if wordByte[s[i]] == 0 {
			if c := s[i]; c < utf8.RuneSelf && asciiClass[c] == clsOther {
				i++
				continue
			}
			break
		}
		start, h := i, e.hash0
		// The bits of all the word's bytes: 0x40 is set by a letter (a
		// lower-case letter has it, a digit not) and for a joiner.
		var bits byte
		for {
			for i < len(s) {
				l := wordByte[s[i]]
				if l == 0 {
					break
				}
				h = (h ^ hasher(l)) * fnvPrime
				bits |= l
				i++
			}
			if i+1 < len(s) && s[i] < utf8.RuneSelf && asciiClass[s[i]] == clsJoiner && wordByte[s[i+1]] != 0 {
				h = (h ^ hasher(s[i])) * fnvPrime
				bits |= 0x40
				i++
				continue
			}
			break
		}
		end := i
		switch {
		case i == len(s):
		case s[i] < utf8.RuneSelf && asciiClass[s[i]] == clsOther:
			i++
		case s[i] < utf8.RuneSelf && asciiClass[s[i]] == clsJoiner &&
			(i+1 == len(s) || s[i+1] < utf8.RuneSelf && asciiClass[s[i+1]] == clsOther):
			// The joiner would wait for a letter; the separator drops it.
			i = min(i+2, len(s))
		default:
			for k := start; k < end; k++ {
				e.put(rune(lowerASCII(s[k])))
			}
			e.prevID = prev
			return i
		}
		// As word, number and wordID do without names.
		switch n := end - start; {
		case n < 2:
		case bits&0x40 == 0:
			if id := uint32(newHasher(prefixNumber).byte(prefix).byte(byte('0' + min(n, 20)))); !e.seen.hit(id) {
				e.push(id)
			}
			prev = 0
		default:
			if n > maxTokenRunes {
				h = e.hashLong0
				for k := start; k < start+foldRunes; k++ {
					h = (h ^ hasher(lowerASCII(s[k]))) * fnvPrime
				}
			}
			id := uint32(h)
			if !e.seen.hit(id) {
				e.push(id)
			}
			if bigrams {
				if prev != 0 {
					if b := bigramID(prev, id); !e.seen.hit(b) {
						e.push(b)
					}
				}
				prev = id | 1
			}
		}
	}
	e.prevID = prev
	return i
}

// lowerASCII lower-cases an ASCII letter and keeps any other byte.
func lowerASCII(c byte) byte {
	if l := wordByte[c]; l != 0 {
		return l
	}
	return c
}

// put appends r to the word in e.runes.
func (e *Extractor) put(r rune) {
	n := len(e.runes)
	e.runes = append(e.runes, r)
	if r >= utf8.RuneSelf {
		e.wide = true
		return
	}
	if r >= '0' && r <= '9' {
		e.digits++
	}
	e.hash = (e.hash ^ hasher(r)) * fnvPrime
	if n < foldRunes {
		e.hashLong = (e.hashLong ^ hasher(r)) * fnvPrime
	}
}

// clearWord empties the word in e.runes.
func (e *Extractor) clearWord() {
	e.runes = e.runes[:0]
	e.wide, e.digits = false, 0
	e.hash, e.hashLong = e.hash0, e.hashLong0
}

// word ends the token in e.runes and adds its features.
func (e *Extractor) word(prefix byte, bigrams bool) {
	w := e.runes
	wide, digits, h, hl := e.wide, e.digits, e.hash, e.hashLong
	e.clearWord()
	if len(w) < 2 {
		return
	}
	if !wide {
		// ASCII: no look-alike letters, and the hashes are made.
		switch {
		case digits == len(w):
			e.number(prefix, len(w))
		case len(w) > maxTokenRunes:
			e.wordID(prefixLong, h, hl, w[:foldRunes], bigrams)
		default:
			e.wordID(prefix, h, hl, w, bigrams)
		}
		return
	}
	digits = 0
	latin, other := 0, 0
	for _, r := range w {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r < 0x250:
			latin++
		default:
			if confusable(r) != 0 {
				other++
			}
		}
	}
	if digits == len(w) {
		e.number(prefix, len(w))
		return
	}
	if latin > 0 && other > 0 {
		// Look-alike letters inside a Latin word are a trick in itself;
		// fold them so that the word is also seen for what it spells.
		e.add(newHasher(prefixMixed).byte(prefix), prefixMixed, string(prefix))
		for i, r := range w {
			if c := confusable(r); c != 0 {
				w[i] = c
			}
		}
	}
	p := prefix
	if len(w) > maxTokenRunes {
		w = w[:foldRunes]
		p = prefixLong
	}
	h = newHasher(p)
	if p == prefixLong {
		h = h.byte(prefix)
	}
	for _, r := range w {
		if r < utf8.RuneSelf {
			h = (h ^ hasher(r)) * fnvPrime
		} else {
			h = h.rune(r)
		}
	}
	e.wordID(p, h, h, w, bigrams)
}

// number adds the feature of an all-digit word of n runes.
func (e *Extractor) number(prefix byte, n int) {
	// Numbers say little one by one; their length says more.
	h := newHasher(prefixNumber).byte(prefix).byte(byte('0' + min(n, 20)))
	e.push(uint32(h))
	if e.Names != nil {
		e.Names(uint32(h), "n:"+string(prefix)+string(rune('0'+min(n, 20))))
	}
	e.prevID = 0
}

// wordID adds the feature of word w (folded when p is prefixLong), of
// hash h (hl when folded), and its bigram with the previous word.
func (e *Extractor) wordID(p byte, h, hl hasher, w []rune, bigrams bool) {
	if p == prefixLong {
		h = hl
	}
	if e.Names != nil {
		e.Names(uint32(h), string(p)+":"+string(w))
	}
	e.push(uint32(h))
	if !bigrams {
		return
	}
	if e.prevID != 0 {
		b := bigramID(e.prevID, uint32(h))
		if e.Names != nil {
			e.Names(b, "b:"+string(e.prev)+" "+string(w))
		}
		e.push(b)
	}
	e.prevID = uint32(h) | 1 // never 0, which means "no previous word"
	if e.Names != nil {
		e.prev = append(e.prev[:0], w...)
	}
}

// bigramID mixes the ids of two adjacent words into the id of the pair
// (a multiply-xorshift finaliser), without hashing their text again.
func bigramID(a, b uint32) uint32 {
	x := uint64(a)<<32 | uint64(b)
	x ^= uint64(prefixBigram)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return uint32(x)
}

// confusable returns the ASCII letter a Cyrillic or Greek letter looks
// like, or 0.
func confusable(r rune) rune {
	switch r {
	case 'а', 'α':
		return 'a'
	case 'е', 'ё', 'ε':
		return 'e'
	case 'о', 'ο':
		return 'o'
	case 'р', 'ρ':
		return 'p'
	case 'с':
		return 'c'
	case 'у', 'υ':
		return 'y'
	case 'х', 'χ':
		return 'x'
	case 'ѕ':
		return 's'
	case 'і', 'ї', 'ι', 'ı':
		return 'i'
	case 'ј':
		return 'j'
	case 'ԁ':
		return 'd'
	case 'һ':
		return 'h'
	case 'к', 'κ':
		return 'k'
	case 'ν':
		return 'v'
	case 'τ':
		return 't'
	case 'ԝ':
		return 'w'
	case 'ӏ':
		return 'l'
	}
	return 0
}
