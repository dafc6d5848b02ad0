package content

import (
	"encoding/binary"
	"unicode"
	"unicode/utf8"
)

// Obfuscations counts two tricks that hide words from filters while a
// reader sees them unchanged (docs/content-model.md, "Obfuscated words"):
//
//   - invisible: an invisible character (zero-width space, joiner or
//     non-joiner, word joiner, byte-order mark, soft hyphen, combining
//     grapheme joiner) between two Latin letters, as in "Pass\u200bword";
//   - mixed: a word whose letters mix Latin with Cyrillic or Greek
//     look-alikes, as in "Micr\u043esoft" or "\u043fa\u0440o\u043b\u044c".
//
// Ordinary mail in any language has neither: a word is written in one
// script, and invisible characters sit in emoji sequences or between
// letters of scripts that need them, not inside Latin words. Pure ASCII
// is skipped eight bytes at a time.
func Obfuscations(s string) (invisible, mixed int) {
	var (
		prevLatin        bool // the previous visible rune is a Latin letter
		pendingInvisible bool // an invisible rune follows a Latin letter
		latin, lookalike bool // the current word's letters so far
	)
	endWord := func() {
		if latin && lookalike {
			mixed++
		}
		latin, lookalike, prevLatin, pendingInvisible = false, false, false, false
	}
	for i := 0; i < len(s); {
		if !latin && !lookalike && !pendingInvisible {
			// Outside a word that could be mixed, ASCII can be skipped
			// wholesale, back to the start of the last word skipped: a
			// look-alike may follow it.
			start := i
			for i+8 <= len(s) && binary.LittleEndian.Uint64([]byte(s[i:i+8]))&0x8080808080808080 == 0 {
				i += 8
			}
			for i > start && asciiLetter(s[i-1]) {
				i--
			}
			if i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if asciiLetter(c) {
				if pendingInvisible {
					invisible++
					pendingInvisible = false
				}
				latin, prevLatin = true, true
				continue
			}
			if c >= '0' && c <= '9' {
				prevLatin, pendingInvisible = false, false
				continue
			}
			endWord()
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case invisibleRune(r):
			if prevLatin {
				pendingInvisible = true
			}
		case confusable(r) != 0 && r >= 0x250:
			lookalike, prevLatin, pendingInvisible = true, false, false
		case unicode.IsLetter(r):
			if r < 0x250 {
				if pendingInvisible {
					invisible++
					pendingInvisible = false
				}
				latin, prevLatin = true, true
			} else {
				prevLatin, pendingInvisible = false, false
			}
		case unicode.Is(unicode.Mn, r):
			// A combining mark belongs to the letter before it.
		default:
			endWord()
		}
	}
	endWord()
	return invisible, mixed
}

func invisibleRune(r rune) bool {
	switch r {
	case 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x034F:
		return true
	}
	return false
}

func asciiLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
