package quarantine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// The key building and the committer's writes as they were before they
// were made to allocate less (keys.go, id.go, commit.go): the oracles of
// keys_diff_test.go, which checks that the store writes the same bytes.

// newRecordOpRef is newRecordOp with the reference keys.
func newRecordOpRef(r *Record) *op {
	return &op{
		id:      r.ID,
		rec:     r,
		status:  r.Status,
		val:     encodeRecord(make([]byte, 0, 256), r),
		idx:     indexKeysRef(r),
		idxVal:  idxValRef(r),
		rollups: rollupKeysRef(r),
	}
}

func idxValRef(r *Record) []byte {
	v := make([]byte, idxValLen)
	v[0] = byte(r.Status)
	v[1] = byte(r.Verdict)
	binary.BigEndian.PutUint32(v[2:], domainHashRef(r.Domain))
	return v
}

func domainHashRef(d string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(d)))
	return h.Sum32()
}

func idxPrefixRef(kind byte, value string) []byte {
	h := fnv.New64a()
	h.Write([]byte(value))
	b := make([]byte, 1, 1+8+keyLen)
	b[0] = kind
	return h.Sum(b)
}

func idxKeyRef(kind byte, value, id string) []byte {
	return append(idxPrefixRef(kind, value), idKeyRef(id)...)
}

func indexKeysRef(r *Record) [][]byte {
	keys := make([][]byte, 0, 8)
	add := func(kind byte, v string) {
		if v != "" {
			keys = append(keys, idxKeyRef(kind, v, r.ID))
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

func rollupKeyRef(gran byte, bucket uint32, c Class, g GroupBy, key string) []byte {
	b := make([]byte, 0, 7+len(key))
	b = append(b, gran)
	b = binary.BigEndian.AppendUint32(b, bucket)
	b = append(b, byte(c), byte(g))
	return append(b, key...)
}

func groupKeyRef(r *Record, g GroupBy) string {
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

func rollupKeysRef(r *Record) []string {
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
	t, _ := idTimeRef(r.ID)
	h, d := hourBucket(t), dayBucket(t)
	for _, g := range allGroups {
		k := groupKeyRef(r, g)
		cs := classes
		if perKey(g) {
			cs = keyed
		}
		for _, c := range cs {
			keys = append(keys, string(rollupKeyRef(hourGran(g), h, c, g, k)), string(rollupKeyRef(granDay, d, c, g, k)))
		}
	}
	return keys
}

func decodeIDCharRef(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		c -= 'a' - 'A'
	}
	for i := 10; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

func parseIDRef(id string) (string, error) {
	if len(id) != IDLen {
		return "", fmt.Errorf("%w: %q: want %d characters", ErrBadID, id, IDLen)
	}
	if v := decodeIDCharRef(id[0]); v < 0 || v > 7 {
		return "", fmt.Errorf("%w: %q: out of range", ErrBadID, id)
	}
	out := []byte(id)
	for i := range out {
		v := decodeIDCharRef(out[i])
		if v < 0 {
			return "", fmt.Errorf("%w: %q: %q is not a Crockford base32 character", ErrBadID, id, out[i])
		}
		out[i] = crockford[v]
	}
	return string(out), nil
}

func idTimeRef(id string) (time.Time, error) {
	if _, err := parseIDRef(id); err != nil {
		return time.Time{}, err
	}
	var ms uint64
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(decodeIDCharRef(id[i]))
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func idKeyRef(id string) []byte {
	var hi, lo uint64
	for i := 0; i < IDLen && i < len(id); i++ {
		v := uint64(decodeIDCharRef(id[i]) & 31)
		hi = hi<<5 | lo>>59
		lo = lo<<5 | v
	}
	b := make([]byte, keyLen)
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

func applyBoltRef(tx *bbolt.Tx, batch []*op, errs []error, delta *qDelta) error {
	logB := tx.Bucket(bucketLog)
	idxB := tx.Bucket(bucketIndex)
	msgB := tx.Bucket(bucketMsg)
	// Ids grow with time, so the log is written almost in key order:
	// fuller pages keep the file small.
	logB.FillPercent = 0.9
	msgB.FillPercent = 0.9
	// Index keys of one value are also written in id order, and rollups
	// in time order: keep their pages full too.
	idxB.FillPercent = 0.9
	tx.Bucket(bucketRollup).FillPercent = 0.9
	agg := make(map[string]uint64)
	for i, o := range batch {
		if !o.take() {
			errs[i] = errAbandoned
			continue
		}
		switch {
		case o.probe:
			if err := tx.Bucket(bucketMeta).Put(metaProbe, probeValue); err != nil {
				return err
			}
		case o.val != nil:
			key := idKeyRef(o.id)
			if logB.Get(key) != nil {
				errs[i] = fmt.Errorf("%w: %s: id already in the log", ErrBadRecord, o.id)
				continue
			}
			if o.content != nil {
				if err := msgB.Put(key, o.content); err != nil {
					return err
				}
				delta.msgs++
				delta.bytes += int64(len(o.content))
			}
			if err := logB.Put(key, o.val); err != nil {
				return err
			}
			for _, k := range o.idx {
				if err := idxB.Put(k, o.idxVal); err != nil {
					return err
				}
			}
			for _, k := range o.rollups {
				agg[k]++
			}
			if o.also.Bolt != nil {
				if err := o.also.Bolt(tx); err != nil {
					return errAlso{err}
				}
			}
		case o.update != nil:
			opErr, err := applyUpdateRef(logB, idxB, msgB, o, delta)
			if err != nil {
				return err
			}
			errs[i] = opErr
		}
	}
	if len(agg) > 0 {
		if err := addRollupsRef(tx.Bucket(bucketRollup), agg); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := addCounter(meta, metaQMessages, delta.msgs); err != nil {
		return err
	}
	return addCounter(meta, metaQBytes, delta.bytes)
}

func applyUpdateRef(logB, idxB, msgB *bbolt.Bucket, o *op, delta *qDelta) (opErr, err error) {
	key := idKeyRef(o.id)
	v := logB.Get(key)
	if v == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, o.id), nil
	}
	r, err := decodeRecord(o.id, v)
	if err != nil {
		return err, nil
	}
	oldKeys, oldVal := indexKeysRef(r), idxValRef(r)
	if err := o.update(r); err != nil {
		return err, nil
	}
	// An update that changes what the index holds (the status on
	// release) moves the record's index entries.
	if newKeys, newVal := indexKeysRef(r), idxValRef(r); !bytes.Equal(oldVal, newVal) || !slices.EqualFunc(oldKeys, newKeys, bytes.Equal) {
		for _, k := range oldKeys {
			if err := idxB.Delete(k); err != nil {
				return nil, err
			}
		}
		for _, k := range newKeys {
			if err := idxB.Put(k, newVal); err != nil {
				return nil, err
			}
		}
	}
	if o.dropContent {
		if c := msgB.Get(key); c != nil {
			delta.msgs--
			delta.bytes -= int64(len(c))
			if err := msgB.Delete(key); err != nil {
				return nil, err
			}
		}
	}
	return nil, logB.Put(key, encodeRecord(make([]byte, 0, len(v)+16), r))
}

func addRollupsRef(b *bbolt.Bucket, agg map[string]uint64) error {
	keys := make([]string, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// bbolt keeps the value slices until commit: one buffer for all.
	vals := make([]byte, 8*len(keys))
	for i, k := range keys {
		n := agg[k]
		if v := b.Get([]byte(k)); len(v) == 8 {
			n += binary.BigEndian.Uint64(v)
		}
		val := vals[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(val, n)
		if err := b.Put([]byte(k), val); err != nil {
			return err
		}
	}
	return nil
}
