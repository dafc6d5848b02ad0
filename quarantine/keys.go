package quarantine

import (
	"encoding/binary"
	"hash/fnv"
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

func domainHash(d string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(d)))
	return h.Sum32()
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
	h := fnv.New64a()
	h.Write([]byte(value))
	b := make([]byte, 1, 1+8+keyLen)
	b[0] = kind
	return h.Sum(b)
}

func idxKey(kind byte, value, id string) []byte {
	return append(idxPrefix(kind, value), idKey(id)...)
}

// indexKeys returns the index keys of r.
func indexKeys(r *Record) [][]byte {
	keys := make([][]byte, 0, 8)
	add := func(kind byte, v string) {
		if v != "" {
			keys = append(keys, idxKey(kind, v, r.ID))
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
		add(idxClientIP, r.ClientIP.Unmap().String())
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
	b := make([]byte, 0, 7+len(key))
	b = append(b, gran)
	b = binary.BigEndian.AppendUint32(b, bucket)
	b = append(b, byte(c), byte(g))
	return append(b, key...)
}

func hourBucket(t time.Time) uint32 { return uint32(t.Unix() / 3600) }
func dayBucket(t time.Time) uint32  { return uint32(t.Unix() / 86400) }

// groupKey is the rollup key of r for g: scoped to the domain, so one
// domain's rows are contiguous and a domain restriction is a prefix.
func groupKey(r *Record, g GroupBy) string {
	d := normValue(r.Domain, true)
	switch g {
	case GroupDomain:
		return d
	case GroupIdentity:
		return d + "\x00" + normValue(r.Identity, true)
	case GroupUser:
		return d + "\x00" + normValue(r.User, true)
	case GroupSender:
		return d + "\x00" + normValue(r.Sender, true)
	}
	return ""
}

var allGroups = [...]GroupBy{groupTotal, GroupIdentity, GroupUser, GroupDomain, GroupSender}

// classOther is the rollup class of deferred and failed mail in the
// per-key groups, where ClassAll is not stored but summed from accepted,
// rejected and other.
const classOther Class = 100

// perKey reports whether g has one counter per identity, user or sender.
func perKey(g GroupBy) bool { return g != groupTotal && g != GroupDomain }

// rollupKeys returns the rollup counters r increments, one each. Totals
// and domains count every class (Series needs them all, and they are
// few). The per-key groups, with one counter per sender and hour or day,
// store only the status class (accepted, rejected or other) and the
// threat verdict class if any: a single counter for most mail.
func rollupKeys(r *Record) []string {
	var cb [4]Class
	classes := r.classes(cb[:0])
	keyed := make([]Class, 0, 2)
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
	keys := make([]string, 0, 2*(2*len(classes)+3*len(keyed)))
	t, _ := IDTime(r.ID)
	h, d := hourBucket(t), dayBucket(t)
	for _, g := range allGroups {
		k := groupKey(r, g)
		cs := classes
		if perKey(g) {
			cs = keyed
		}
		for _, c := range cs {
			keys = append(keys, string(rollupKey(hourGran(g), h, c, g, k)), string(rollupKey(granDay, d, c, g, k)))
		}
	}
	return keys
}
