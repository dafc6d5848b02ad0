package filter

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ruleSet is the operator's body and URL rules compiled into one matcher
// per target: an Aho-Corasick automaton finds, in one pass over the
// lower-cased text, every substring rule that fires and the literals that
// an expression cannot match without (its prefilter: groups of literals,
// one of each group must occur, as in "click", "here" and one of
// "verify", "unlock" or "claim" for `click\s+here\s+to\s+(verify|unlock|claim)`).
// An expression runs only when its prefilter is met, so on most mail most
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
	// ac finds the patterns: the substring rules' and the expressions'
	// prefilter literals, each once.
	ac *acMatcher
	// npat is the number of AC patterns.
	npat int
	// subst[i] is the AC pattern of rules[i] when it is a substring rule,
	// -1 otherwise.
	subst []int
	// res[i] is the expression of rules[i], nil for a substring rule.
	res []*regexp.Regexp
	// pre[i] lists groups of AC patterns: the expression rules[i] can
	// match only when a pattern of every group occurs; nil means it
	// always runs.
	pre [][][]int
}

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
			var pre [][]int
			for _, group := range prefilter(r.Pattern) {
				var g []int
				for _, l := range group {
					g = append(g, add(l))
				}
				pre = append(pre, g)
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
			if s := text(i); foldsAsASCII(s) {
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
		for _, group := range rt.pre[i] {
			if !anyFound(found, group) {
				continue outer
			}
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

// minPrefilter is the shortest literal worth a prefilter group: shorter
// ones occur in nearly every text.
const minPrefilter = 3

// maxVariants bounds the spellings of one literal (see literalVariants).
const maxVariants = 8

// prefilter returns groups of lower-case literals such that
// strings.ToLower of every text the expression matches holds a literal of
// each group; nil when it cannot name any (then the expression must
// always run).
func prefilter(pattern string) [][]string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, g := range required(re) {
		if shortest(g) >= minPrefilter {
			out = append(out, g)
		}
	}
	return out
}

// required returns groups of literals, one of each occurring in the
// lower-cased form of every match of re: a concatenation needs the groups
// of all its parts, an alternation one literal of each branch's best
// group.
func required(re *syntax.Regexp) [][]string {
	switch re.Op {
	case syntax.OpLiteral:
		if v := literalVariants(re.Rune, re.Flags&syntax.FoldCase != 0); v != nil {
			return [][]string{v}
		}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var all [][]string
		for _, sub := range re.Sub {
			all = append(all, required(sub)...)
		}
		return all
	case syntax.OpAlternate:
		var union []string
		for _, sub := range re.Sub {
			var best []string
			for _, g := range required(sub) {
				if shortest(g) > shortest(best) {
					best = g
				}
			}
			if best == nil {
				return nil
			}
			union = append(union, best...)
		}
		return [][]string{union}
	}
	return nil
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

// literalVariants returns the lower-case spellings of which one appears
// in strings.ToLower of any text the literal matches, or nil. A rune
// matched as written lower-cases to one rune. A case-folded rune matches
// every rune of its folding orbit, whose lower cases are usually one rune
// ('k', 'K' and the Kelvin sign all give 'k') but not always ('s' and 'S'
// give 's', the long s 'ſ' stays 'ſ'): each such rune multiplies the
// spellings. Past maxVariants spellings, the longest run of runes with
// one lower case stands for the literal.
func literalVariants(runes []rune, fold bool) []string {
	variants := []string{""}
	for _, r := range runes {
		if r == utf8.RuneError {
			return literalFragment(runes, fold)
		}
		lowers := []rune{unicode.ToLower(r)}
		if fold {
			lowers = foldLowers(r)
		}
		if len(variants)*len(lowers) > maxVariants {
			return literalFragment(runes, fold)
		}
		var next []string
		for _, v := range variants {
			for _, l := range lowers {
				next = append(next, v+string(l))
			}
		}
		variants = next
	}
	if variants[0] == "" {
		return nil
	}
	return variants
}

// literalFragment returns the longest run of a literal's runes that have
// one lower case each, as a one-spelling group, or nil.
func literalFragment(runes []rune, fold bool) []string {
	var best, cur strings.Builder
	flush := func() {
		if cur.Len() > best.Len() {
			best.Reset()
			best.WriteString(cur.String())
		}
		cur.Reset()
	}
	for _, r := range runes {
		if r == utf8.RuneError || (fold && len(foldLowers(r)) > 1) {
			flush()
			continue
		}
		cur.WriteRune(unicode.ToLower(r))
	}
	flush()
	if best.Len() == 0 {
		return nil
	}
	return []string{best.String()}
}

// foldLowers returns the distinct lower cases of the runes of r's
// case-folding orbit.
func foldLowers(r rune) []rune {
	out := []rune{unicode.ToLower(r)}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if l := unicode.ToLower(f); !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// foldsAsASCII reports whether folding the ASCII letters of s is all
// strings.ToLower would do to it: s is valid UTF-8 (ToLower replaces
// invalid bytes) and has no upper-case letter outside ASCII. Most mail
// text in Latin script is, so it is scanned without a lower-cased copy.
func foldsAsASCII(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.ToLower(r) != r {
			return false
		}
		i += n
	}
	return true
}
