package filter

// acMatcher finds which of a set of byte strings occur in a text, in one
// pass over it (Aho-Corasick). ASCII upper-case letters of the text are
// folded to lower case as the text is read, so that an ASCII text needs no
// lower-cased copy; the patterns must be lower case.
//
// The automaton is a dense table over byte classes: the bytes that occur
// in a pattern get a class each, every other byte shares class 0, so the
// table holds states × classes entries however large the alphabet.
type acMatcher struct {
	class    [256]uint8
	nclass   int
	delta    []int32   // state*nclass + class -> next state
	out      [][]int32 // patterns ending at each state, suffix links followed
	patterns int
}

// newACMatcher builds the matcher of patterns (lower case, non-empty; the
// index of a pattern is its id in Scan's result). It returns nil for no
// patterns.
func newACMatcher(patterns []string) *acMatcher {
	if len(patterns) == 0 {
		return nil
	}
	m := &acMatcher{patterns: len(patterns)}
	var used [256]bool
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	// Class 0 is "no pattern has this byte", unless every byte is used.
	distinct := 0
	for _, u := range used {
		if u {
			distinct++
		}
	}
	m.nclass = distinct + 1
	if distinct == 256 {
		m.nclass = 256
	}
	next := 0
	for b := range 256 {
		if used[b] {
			if distinct < 256 {
				next++
			}
			m.class[b] = uint8(next)
			if distinct == 256 {
				next++
			}
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		m.class[b] = m.class[b+'a'-'A']
	}

	// The trie.
	const none = -1
	newState := func() int32 {
		for range m.nclass {
			m.delta = append(m.delta, none)
		}
		m.out = append(m.out, nil)
		return int32(len(m.out) - 1)
	}
	newState()
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := int32(m.class[p[i]])
			t := m.delta[s*int32(m.nclass)+c]
			if t == none {
				t = newState()
				m.delta[s*int32(m.nclass)+c] = t
			}
			s = t
		}
		m.out[s] = append(m.out[s], int32(id))
	}

	// Failure links, breadth first, turning the trie into a complete
	// automaton.
	fail := make([]int32, len(m.out))
	queue := make([]int32, 0, len(m.out))
	for c := range m.nclass {
		t := m.delta[c]
		if t == none {
			m.delta[c] = 0
			continue
		}
		fail[t] = 0
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.out[s] = append(m.out[s], m.out[fail[s]]...)
		for c := range m.nclass {
			i := s*int32(m.nclass) + int32(c)
			t := m.delta[i]
			f := m.delta[fail[s]*int32(m.nclass)+int32(c)]
			if t == none {
				m.delta[i] = f
				continue
			}
			fail[t] = f
			queue = append(queue, t)
		}
	}
	return m
}

// scan marks in found (indexed by pattern, len(found) ≥ the number of
// patterns) every pattern that occurs in s, folding ASCII upper case, and
// returns how many it newly marked.
func (m *acMatcher) scan(s string, found []bool) int {
	n := 0
	st := int32(0)
	nc := int32(m.nclass)
	for i := 0; i < len(s); i++ {
		st = m.delta[st*nc+int32(m.class[s[i]])]
		for _, id := range m.out[st] {
			if !found[id] {
				found[id] = true
				n++
			}
		}
	}
	return n
}
