package quarantine

import (
	"encoding/binary"
	"strings"
	"time"
)

// Bucket names. The store owns every bucket whose name starts with
// "quarantine.".
var (
	bucketLog    = []byte("quarantine.log")    // binary id -> encoded Record
	bucketIndex  = []byte("quarantine.idx")    // kind|hash(value)|id -> idxVal
	bucketMsg    = []byte("quarantine.msg")    // id -> deflated raw message
	bucketRollup = []byte("quarantine.rollup") // gran|bucket|class|group|key -> uint64
	bucketMeta   = []byte("quarantine.meta")   // counters
)

var (
	metaQMessages = []byte("quarantine.messages")
	metaQBytes    = []byte("quarantine.bytes")
	// metaProbe is rewritten by the write probe while the log is
	// unwritable; its value's size stands for a small commit round.
	metaProbe = []byte("probe")
)

// Index kinds: the first byte of an index key.
const (
	idxUser      = 'u'
	idxDomain    = 'd'
	idxIdentity  = 'i'
	idxStatus    = 's'
	idxVerdict   = 'v'
	idxMessageID = 'm'
	idxTrace     = 't'
	idxClientIP  = 'c'
)

// maxIndexValue caps the value part of an index key. Longer values are
// truncated in the key; the record itself is compared in full.
const maxIndexValue = 200

// idxValLen is the size of an index entry's value: status, verdict and a
// hash of the domain, so that filters on those can skip records without
// loading them.
const idxValLen = 6

func idxVal(r *Record) []byte {
	v := make([]byte, idxValLen)
	v[0] = byte(r.Status)
	v[1] = byte(r.Verdict)
	binary.BigEndian.PutUint32(v[2:], domainHash(r.Domain))
	return v
}

func domainHash(d string) uint32 { return fnv32a(strings.ToLower(d)) }

// fnv32a and fnv64a are hash/fnv's New32a and New64a over s, without the
// allocations of a hash.Hash: they run for every record written.
func fnv32a[T string | []byte](s T) uint32 {
	h := uint32(2166136261)
	for i := range len(s) {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func fnv64a[T string | []byte](s T) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// normValue makes an index or rollup value from a field: case folded
// where the field is case-insensitive, NUL bytes removed (NUL separates
// the domain from the key in rollups), capped.
func normValue(s string, fold bool) string {
	s = strings.TrimSpace(s)
	if fold {
		s = strings.ToLower(s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) > maxIndexValue {
		s = s[:maxIndexValue]
	}
	return s
}

// normMessageID strips the angle brackets, so "<a@b>" and "a@b" match.
func normMessageID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return normValue(s, false)
}

// idxPrefix returns kind|hash(value), the prefix of all index keys for
// value. A 64-bit hash keeps keys short and of one size whatever the
// value; the rare collision only makes a search load a record that its
// filter then drops.
func idxPrefix(kind byte, value string) []byte {
	return appendIdxPrefix(make([]byte, 0, idxKeyLen), kind, fnv64a(value))
}

// idxKeyLen is the length of an index key: kind, hash and id.
const idxKeyLen = 1 + 8 + keyLen

func appendIdxPrefix(b []byte, kind byte, hash uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, kind), hash)
}

// indexKeys returns the index keys of r, which share one buffer.
func indexKeys(r *Record) [][]byte {
	var hashes [8]uint64
	var kinds [8]byte
	n := 0
	add := func(kind byte, v string) {
		if v != "" {
			kinds[n], hashes[n] = kind, fnv64a(v)
			n++
		}
	}
	add(idxUser, normValue(r.User, true))
	add(idxDomain, normValue(r.Domain, true))
	add(idxIdentity, normValue(r.Identity, true))
	// Most mail is accepted and clean: an index of those would list most
	// of the log, which the log itself does better.
	if r.Status != StatusAccepted {
		add(idxStatus, string(rune('0'+r.Status)))
	}
	if r.Verdict > VerdictClean {
		add(idxVerdict, string(rune('0'+r.Verdict)))
	}
	add(idxMessageID, normMessageID(r.MessageID))
	add(idxTrace, normValue(r.TraceToken, false))
	if r.ClientIP.IsValid() {
		var ip [64]byte
		kinds[n], hashes[n] = idxClientIP, fnv64a(r.ClientIP.Unmap().AppendTo(ip[:0]))
		n++
	}
	var id [keyLen]byte
	appendIDKey(id[:0], r.ID)
	buf := make([]byte, 0, n*idxKeyLen)
	keys := make([][]byte, n)
	for i := range n {
		buf = appendIdxPrefix(buf, kinds[i], hashes[i])
		buf = append(buf, id[:]...)
		keys[i] = buf[i*idxKeyLen : (i+1)*idxKeyLen : (i+1)*idxKeyLen]
	}
	return keys
}

// Rollup granularities: the first byte of a rollup key. Hourly counters
// of the per-key groups (identity, user, sender) are as many as the
// records themselves, so they have their own prefix and are kept only for
// Options.HourlyRetention; the hourly totals and per-domain counters, and
// all daily counters, are kept as long as the log.
const (
	granHour    = 'h' // totals and domains, by hour
	granKeyHour = 'k' // identities, users and senders, by hour
	granDay     = 'd' // everything, by UTC day
)

// hourGran returns the hourly granularity of group g.
func hourGran(g GroupBy) byte {
	if perKey(g) {
		return granKeyHour
	}
	return granHour
}

// groupTotal is the rollup group of the per-class totals used by Series.
const groupTotal GroupBy = 0

// rollupKey is gran|bucket(4)|class|group|key.
func rollupKey(gran byte, bucket uint32, c Class, g GroupBy, key string) []byte {
	return appendRollupKey(make([]byte, 0, 7+len(key)), gran, bucket, c, g, key)
}

func appendRollupKey[T string | []byte](b []byte, gran byte, bucket uint32, c Class, g GroupBy, key T) []byte {
	b = append(b, gran)
	b = binary.BigEndian.AppendUint32(b, bucket)
	b = append(b, byte(c), byte(g))
	return append(b, key...)
}

func hourBucket(t time.Time) uint32 { return uint32(t.Unix() / 3600) }
func dayBucket(t time.Time) uint32  { return uint32(t.Unix() / 86400) }

// appendGroupKey appends the rollup key of r for g to b: scoped to the
// domain d (r's, normalised), so one domain's rows are contiguous and a
// domain restriction is a prefix.
func appendGroupKey(b []byte, r *Record, g GroupBy, d string) []byte {
	var v string
	switch g {
	case GroupDomain:
		return append(b, d...)
	case GroupIdentity:
		v = r.Identity
	case GroupUser:
		v = r.User
	case GroupSender:
		v = r.Sender
	default:
		return b
	}
	b = append(append(b, d...), 0)
	return append(b, normValue(v, true)...)
}

var allGroups = [...]GroupBy{groupTotal, GroupIdentity, GroupUser, GroupDomain, GroupSender}

// classOther is the rollup class of deferred and failed mail in the
// per-key groups, where ClassAll is not stored but summed from accepted,
// rejected and other.
const classOther Class = 100

// perKey reports whether g has one counter per identity, user or sender.
func perKey(g GroupBy) bool { return g != groupTotal && g != GroupDomain }

// maxRollupKeys bounds the rollup keys of a record: an hourly and a daily
// key for each class of the totals and domains (at most three) and of the
// per-key groups (at most two).
const maxRollupKeys = 2 * (2*3 + 3*2)

// rollupKeys returns the rollup counters r increments, one each. Totals
// and domains count every class (Series needs them all, and they are
// few). The per-key groups, with one counter per sender and hour or day,
// store only the status class (accepted, rejected or other) and the
// threat verdict class if any: a single counter for most mail. The keys
// are built in one buffer and share one string's bytes, as every record
// written makes them.
func rollupKeys(r *Record) []string {
	var cb [4]Class
	classes := r.classes(cb[:0])
	var kb [2]Class
	keyed := kb[:0]
	switch r.Status {
	case StatusAccepted:
		keyed = append(keyed, ClassAccepted)
	case StatusQuarantined, StatusRejected, StatusReleased:
		keyed = append(keyed, ClassRejected)
	default:
		keyed = append(keyed, classOther)
	}
	if r.Verdict > VerdictClean {
		keyed = append(keyed, classes[len(classes)-1])
	}
	t, _ := IDTime(r.ID)
	h, d := hourBucket(t), dayBucket(t)
	dom := normValue(r.Domain, true)
	// Most records' keys fit in stack; all is their only copy on the heap.
	var stack [2048]byte
	buf := stack[:0]
	var ends [maxRollupKeys]int
	n := 0
	var gb [2*maxIndexValue + 1]byte
	for _, g := range allGroups {
		k := appendGroupKey(gb[:0], r, g, dom)
		cs := classes
		if perKey(g) {
			cs = keyed
		}
		for _, c := range cs {
			buf = appendRollupKey(buf, hourGran(g), h, c, g, k)
			ends[n] = len(buf)
			buf = appendRollupKey(buf, granDay, d, c, g, k)
			ends[n+1] = len(buf)
			n += 2
		}
	}
	all := string(buf)
	keys := make([]string, n)
	start := 0
	for i, end := range ends[:n] {
		keys[i] = all[start:end]
		start = end
	}
	return keys
}
