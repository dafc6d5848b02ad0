package filter

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ruleSet is the operator's body and URL rules compiled into one matcher
// per target: an Aho-Corasick automaton finds, in one pass over the
// lower-cased text, every substring rule that fires and every literal
// that an expression cannot match without (its prefilter). An expression
// runs only when one of its literals occurs, so on most mail most
// expressions never run; one without a usable literal always runs.
//
// A rule fires exactly when the rule matched alone would: a substring rule
// when strings.Contains(strings.ToLower(text), lower-case pattern), an
// expression when it matches the text as written.
type ruleSet struct {
	body, url ruleTarget
}

// ruleTarget is the compiled rules of one target.
type ruleTarget struct {
	// rules are indexes into Builtin.rules.
	rules []int
	// ac finds the patterns: substring rules first (pattern i is rules[i]
	// when subst[i]), then prefilter literals.
	ac *acMatcher
	// npat is the number of AC patterns.
	npat int
	// subst[i] is the AC pattern of rules[i] when it is a substring rule,
	// -1 otherwise.
	subst []int
	// res[i] is the expression of rules[i], nil for a substring rule.
	res []*regexp.Regexp
	// pre[i] lists the AC patterns of which one must occur for the
	// expression rules[i] to match; nil means it always runs.
	pre [][]int
}

// minPrefilter is the shortest literal worth a prefilter: shorter ones
// occur in nearly every text.
const minPrefilter = 3

// compileRuleSet builds the matchers of rules' body and URL rules.
func compileRuleSet(rules []compiledRule) ruleSet {
	var rs ruleSet
	for _, t := range []struct {
		target Target
		into   *ruleTarget
	}{{TargetBody, &rs.body}, {TargetURL, &rs.url}} {
		rt := t.into
		var pats []string
		index := map[string]int{}
		add := func(p string) int {
			if i, ok := index[p]; ok {
				return i
			}
			index[p] = len(pats)
			pats = append(pats, p)
			return len(pats) - 1
		}
		for i := range rules {
			r := &rules[i]
			if r.Target != t.target {
				continue
			}
			rt.rules = append(rt.rules, i)
			rt.res = append(rt.res, r.re)
			if r.re == nil {
				rt.subst = append(rt.subst, add(r.lower))
				rt.pre = append(rt.pre, nil)
				continue
			}
			rt.subst = append(rt.subst, -1)
			var pre []int
			if lits := prefilter(r.Pattern); lits != nil {
				for _, l := range lits {
					pre = append(pre, add(l))
				}
			}
			rt.pre = append(rt.pre, pre)
		}
		rt.npat = len(pats)
		rt.ac = newACMatcher(pats)
	}
	return rs
}

// match sets fired[r] for every rule r of rt (an index into
// Builtin.rules) that fires on one of the n texts text(0..n-1).
func (rt *ruleTarget) match(n int, text func(int) string, fired []bool) {
	if len(rt.rules) == 0 || n == 0 {
		return
	}
	found := make([]bool, rt.npat)
	if rt.ac != nil {
		for i := range n {
			if s := text(i); isASCII(s) {
				rt.ac.scan(s, found)
			} else {
				rt.ac.scan(strings.ToLower(s), found)
			}
		}
	}
outer:
	for i, ri := range rt.rules {
		if p := rt.subst[i]; p >= 0 {
			fired[ri] = found[p]
			continue
		}
		if pre := rt.pre[i]; pre != nil && !anyFound(found, pre) {
			continue
		}
		re := rt.res[i]
		for j := range n {
			if re.MatchString(text(j)) {
				fired[ri] = true
				continue outer
			}
		}
	}
}

func anyFound(found []bool, pats []int) bool {
	for _, p := range pats {
		if found[p] {
			return true
		}
	}
	return false
}

// prefilter returns lower-case literals of which at least one occurs in
// strings.ToLower of every text the expression matches, or nil when it
// cannot name such literals (then the expression must always run).
func prefilter(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := required(re)
	if !ok {
		return nil
	}
	for _, l := range lits {
		if len(l) < minPrefilter {
			return nil
		}
	}
	return lits
}

// required returns literals of which one occurs in the lower-cased form of
// every match of re, choosing the set whose shortest member is longest.
func required(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		l := literalFragment(re.Rune, re.Flags&syntax.FoldCase != 0)
		return []string{l}, l != ""
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		for _, sub := range re.Sub {
			if s, ok := required(sub); ok && shortest(s) > shortest(best) {
				best = s
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			s, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, s...)
		}
		return all, len(all) > 0
	}
	return nil, false
}

func shortest(lits []string) int {
	if len(lits) == 0 {
		return 0
	}
	n := len(lits[0])
	for _, l := range lits[1:] {
		n = min(n, len(l))
	}
	return n
}

// literalFragment returns the longest run of a literal's runes whose
// lower-case form is certain to appear in strings.ToLower of a text the
// literal matches. A case-sensitive rune always qualifies; a case-folded
// one only when every rune it folds with lower-cases to the same rune
// ('k', 'K' and the Kelvin sign do; 's' does not: the long s 'ſ' is its
// own lower case).
func literalFragment(runes []rune, fold bool) string {
	var best, cur strings.Builder
	flush := func() {
		if cur.Len() > best.Len() {
			best.Reset()
			best.WriteString(cur.String())
		}
		cur.Reset()
	}
	for _, r := range runes {
		if r == utf8.RuneError || (fold && !foldsToOneLower(r)) {
			flush()
			continue
		}
		cur.WriteRune(unicode.ToLower(r))
	}
	flush()
	return best.String()
}

// foldsToOneLower reports whether every rune of r's case-folding orbit
// has the same lower case.
func foldsToOneLower(r rune) bool {
	want := unicode.ToLower(r)
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if unicode.ToLower(f) != want {
			return false
		}
	}
	return true
}

// isASCII reports whether s is 7-bit: then folding ASCII letters is all
// strings.ToLower would do.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
