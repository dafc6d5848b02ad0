package filter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-message"
)

// Limits and conditions that leave content unscanned, as named in
// Gap.Limit, Verdict.Partial and the message log. The names of the
// parsing limits are their configuration keys (docs/config-filter.md).
const (
	LimitDepth             = "max_depth"
	LimitParts             = "max_parts"
	LimitPartBytes         = "max_part_bytes"
	LimitDecodedBytes      = "max_decoded_bytes"
	LimitArchiveDepth      = "max_archive_depth"
	LimitArchiveEntries    = "max_archive_entries"
	LimitArchiveBytes      = "max_archive_bytes"
	LimitArchiveEncrypted  = "archive_encrypted"
	LimitArchiveUnreadable = "archive_unreadable"
	// LimitClamdStream: the message was larger than clamd takes and
	// clamd.over_limit is skip.
	LimitClamdStream = "clamd_max_stream_bytes"
	// LimitClamdLimits: clamd reached one of its own scan limits and says
	// so (Heuristics.Limits.Exceeded, with AlertExceedsMax).
	LimitClamdLimits = "clamd_limits"
)

// GapKind says what a Gap left unscanned. It decides what the default
// unscannable policy does with the message.
type GapKind int

const (
	// GapText is text (text/* parts) the engines saw only in part or not
	// at all.
	GapText GapKind = iota
	// GapFile is a file of an inert type (image, PDF, audio, ...) the
	// engines did not see whole.
	GapFile
	// GapExecutable is an executable, a script, an archive, or content of
	// unknown type that could not be opened: what the built-in engine
	// would have looked inside.
	GapExecutable
)

var gapKindNames = [...]string{GapText: "text", GapFile: "file", GapExecutable: "executable"}

// String returns text, file or executable.
func (k GapKind) String() string {
	if k < 0 || int(k) >= len(gapKindNames) {
		return fmt.Sprintf("GapKind(%d)", int(k))
	}
	return gapKindNames[k]
}

// Gap is content that the engines could not see whole because a limit was
// reached or an archive could not be opened.
type Gap struct {
	// Limit names the limit or condition, one of the Limit* constants.
	Limit string
	// Kind is what was left unscanned.
	Kind GapKind
	// Path is the first MIME part (or archive entry, "part/entry") where
	// the limit was hit; "" for the whole message.
	Path string
}

// addGap appends g unless a gap with the same limit and kind is there
// already, which bounds the list by the number of limits times kinds.
func addGap(gaps []Gap, g Gap) []Gap {
	for _, x := range gaps {
		if x.Limit == g.Limit && x.Kind == g.Kind {
			return gaps
		}
	}
	return append(gaps, g)
}

// PartialLimits returns the distinct limits of gaps, sorted: what the
// message log shows as "partially scanned".
func PartialLimits(gaps []Gap) []string {
	var out []string
	for _, g := range gaps {
		if !slices.Contains(out, g.Limit) {
			out = append(out, g.Limit)
		}
	}
	slices.Sort(out)
	return out
}

// archiveExtensions are file name extensions of archive formats.
var archiveExtensions = map[string]bool{
	"zip": true, "rar": true, "7z": true, "gz": true, "tgz": true, "tar": true,
	"bz2": true, "tbz": true, "xz": true, "txz": true, "zst": true, "cab": true,
	"arj": true, "lzh": true, "lha": true, "ace": true, "z": true, "lz": true,
}

// archiveTypes are media types declared for archives, plus the type of
// content whose kind is unknown.
var archiveTypes = map[string]bool{
	"application/zip": true, "application/x-zip-compressed": true, "application/x-zip": true,
	"application/vnd.rar": true, "application/x-rar-compressed": true, "application/x-rar": true,
	"application/x-7z-compressed": true, "application/gzip": true, "application/x-gzip": true,
	"application/x-tar": true, "application/x-gtar": true, "application/x-bzip2": true,
	"application/x-xz": true, "application/zstd": true, "application/vnd.ms-cab-compressed": true,
	"application/java-archive": true, "application/x-iso9660-image": true,
	"application/octet-stream": true,
}

var defaultDangerous = extSet(nil, DefaultDangerousExtensions)
var defaultMacro = extSet(nil, DefaultMacroExtensions)

// gapKindOf says what kind of content a part is from its header alone, for
// parts the walker did not read.
func gapKindOf(h message.Header) GapKind {
	ct, _, name := partMeta(h)
	return gapKind(ct, name)
}

func gapKind(ct, name string) GapKind {
	last, _ := exts(cleanName(name))
	switch {
	case defaultDangerous[last], defaultMacro[last], archiveExtensions[last],
		executableTypes[ct], archiveTypes[ct]:
		return GapExecutable
	case strings.HasPrefix(ct, "text/"):
		return GapText
	case strings.HasPrefix(ct, "image/"), strings.HasPrefix(ct, "audio/"), strings.HasPrefix(ct, "video/"),
		strings.HasPrefix(ct, "font/"), ct == "application/pdf", ct == "application/pgp-signature",
		ct == "application/pkcs7-signature", ct == "application/x-pkcs7-signature",
		ct == "application/pgp-encrypted", ct == "application/ics",
		strings.HasPrefix(ct, "message/"):
		return GapFile
	}
	// Office documents (the Open XML ones are zip archives the built-in
	// engine looks inside for macros) and application types of unknown
	// content.
	return GapExecutable
}

// UnscannablePolicy says what happens to a message the engines found
// clean but could not see whole (Verdict.Gaps is not empty).
type UnscannablePolicy int

const (
	// UnscannableDefault refuses the message when a gap is an executable,
	// script or archive (GapExecutable) and relays it, flagged, when only
	// text or inert files were left unscanned.
	UnscannableDefault UnscannablePolicy = iota
	// UnscannableAccept relays the message, flagged.
	UnscannableAccept
	// UnscannableTempfail defers the message (451), as the operator chose.
	UnscannableTempfail
	// UnscannableBlock refuses the message (550), quarantined first.
	UnscannableBlock
)

var unscannableNames = [...]string{UnscannableDefault: "", UnscannableAccept: "accept", UnscannableTempfail: "tempfail", UnscannableBlock: "block"}

// String returns accept, tempfail or block, or "" for the default.
func (p UnscannablePolicy) String() string {
	if p < 0 || int(p) >= len(unscannableNames) {
		return fmt.Sprintf("UnscannablePolicy(%d)", int(p))
	}
	return unscannableNames[p]
}

// ParseUnscannablePolicy parses accept, tempfail or block; "" is the
// default policy.
func ParseUnscannablePolicy(s string) (UnscannablePolicy, error) {
	for i, n := range unscannableNames {
		if s == n {
			return UnscannablePolicy(i), nil
		}
	}
	return UnscannableDefault, fmt.Errorf("unknown unscannable policy %q: use accept, tempfail or block", s)
}

// UnscannableAction is what Decide says to do with a message.
type UnscannableAction int

const (
	// ActRelay: relay the message, flagged as partially scanned when it
	// has gaps.
	ActRelay UnscannableAction = iota
	// ActTempfail: answer 451 and keep nothing.
	ActTempfail
	// ActBlock: quarantine the message and answer 550.
	ActBlock
)

// Decide applies the policy to the gaps of a message the engines found
// clean. Without gaps the answer is always ActRelay.
func (p UnscannablePolicy) Decide(gaps []Gap) UnscannableAction {
	if len(gaps) == 0 {
		return ActRelay
	}
	switch p {
	case UnscannableAccept:
		return ActRelay
	case UnscannableTempfail:
		return ActTempfail
	case UnscannableBlock:
		return ActBlock
	}
	for _, g := range gaps {
		if g.Kind == GapExecutable {
			return ActBlock
		}
	}
	return ActRelay
}
