package content

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// refExtractor is the Extractor as it was before the features were kept
// distinct as they are found: every id appended, then sorted and
// compacted. The differential test and fuzz target hold Extract to it.
type refExtractor struct {
	ids     []uint32
	tmp     []uint32
	generic []uint32
	runes   []rune
	prev    []rune
	prevID  uint32
	Names   func(id uint32, name string)
}

// Extract returns the features of d. The returned slice is owned by e and
// valid until its next call.
func (e *refExtractor) Extract(d *Doc) Features {
	e.ids = e.ids[:0]
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
	e.add(newHasher(prefixLinks).string(bucket), prefixLinks, bucket)
	e.generic = append(e.generic, e.ids[len(e.ids)-1])
	for _, t := range d.Structure {
		h := newHasher(prefixStructure).string(t.Kind)
		if t.Value != "" {
			h = h.byte(':').string(t.Value)
		}
		e.ids = append(e.ids, uint32(h))
		e.generic = append(e.generic, uint32(h))
		if e.Names != nil {
			name := t.Kind
			if t.Value != "" {
				name += ":" + t.Value
			}
			e.Names(uint32(h), "m:"+name)
		}
	}
	e.ids, e.tmp = refSortIDs(e.ids, e.tmp)
	e.ids = slices.Compact(e.ids)
	return e.ids
}

// sortIDs sorts ids, using tmp (grown as needed) as scratch, and returns
// both. Feature ids are uniform hashes, so above a few hundred a radix
// sort (four passes of a byte) beats comparison sorting.
func refSortIDs(ids, tmp []uint32) ([]uint32, []uint32) {
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

func (e *refExtractor) add(h hasher, prefix byte, name string) {
	id := uint32(h)
	e.ids = append(e.ids, id)
	if e.Names != nil {
		e.Names(id, string(prefix)+":"+name)
	}
}

// addRunes adds a CJK unigram (b == 0) or bigram, naming it only when
// names are asked for.
func (e *refExtractor) addRunes(h hasher, prefix byte, a, b rune) {
	e.ids = append(e.ids, uint32(h))
	if e.Names != nil {
		name := string(a)
		if b != 0 {
			name += string(b)
		}
		e.Names(uint32(h), string(prefix)+":"+name)
	}
}

// text tokenises s: word tokens (with prefix), and for the body bigrams of
// adjacent words; CJK runs become character bigrams.
func (e *refExtractor) text(prefix byte, s string, bigrams bool) {
	e.runes = e.runes[:0]
	var join rune // a joiner seen after a word run, kept if a run follows
	var cjkPrev rune
	cjkRun := 0
	endCJK := func() {
		if cjkRun == 1 {
			e.addRunes(newHasher(prefix).rune(cjkPrev), prefix, cjkPrev, 0)
		}
		cjkPrev, cjkRun = 0, 0
	}
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r < utf8.RuneSelf && asciiClass[r] == clsWord && cjkRun == 0 {
			// The common case, a letter or digit of ASCII text, without
			// the general path's decoding and class lookup.
			i++
			if join != 0 {
				e.runes = append(e.runes, join)
				join = 0
			}
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			e.runes = append(e.runes, r)
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
				e.runes = append(e.runes, join)
				join = 0
			}
			e.runes = append(e.runes, unicode.ToLower(r))
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
				e.runes = append(e.runes, '$')
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

// word ends the token in e.runes and adds its features.
func (e *refExtractor) word(prefix byte, bigrams bool) {
	w := e.runes
	e.runes = e.runes[:0]
	if len(w) < 2 {
		return
	}
	digits, latin, other := 0, 0, 0
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
		// Numbers say little one by one; their length says more.
		h := newHasher(prefixNumber).byte(prefix).byte(byte('0' + min(len(w), 20)))
		e.ids = append(e.ids, uint32(h))
		if e.Names != nil {
			e.Names(uint32(h), "n:"+string(prefix)+string(rune('0'+min(len(w), 20))))
		}
		e.prevID = 0
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
	h := newHasher(p)
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
	if e.Names != nil {
		e.Names(uint32(h), string(p)+":"+string(w))
	}
	e.ids = append(e.ids, uint32(h))
	if !bigrams {
		return
	}
	if e.prevID != 0 {
		b := bigramID(e.prevID, uint32(h))
		if e.Names != nil {
			e.Names(b, "b:"+string(e.prev)+" "+string(w))
		}
		e.ids = append(e.ids, b)
	}
	e.prevID = uint32(h) | 1 // never 0, which means "no previous word"
	if e.Names != nil {
		e.prev = append(e.prev[:0], w...)
	}
}
