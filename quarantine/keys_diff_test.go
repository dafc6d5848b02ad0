package quarantine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// The differential tests: the key building and the committer's writes
// against their reference versions (keys_ref_test.go), which are the code
// as it was before it was made to allocate less. The store must write the
// same keys and values, byte for byte, in the same buckets.

// diffRecords returns the records the differential tests write, in id
// order: realistic ones (benchRecord) and edge cases of the fields that
// make keys (case, spaces, NUL bytes, values past maxIndexValue, invalid
// UTF-8, addresses of both families, every status and verdict).
func diffRecords(n int) []*Record {
	rng := rand.New(rand.NewPCG(11, 12))
	at := testBase
	var recs []*Record
	next := func() time.Time {
		// Spread over three days, so that records fall in many hourly
		// and daily rollup buckets.
		at = at.Add(time.Duration(rng.IntN(600)) * time.Second)
		return at
	}
	long := strings.Repeat("Ab", maxIndexValue)
	edges := []func(r *Record){
		func(r *Record) { r.Domain, r.Identity = " Out.EXAMPLE.net ", "Alice@Customer.Example" },
		func(r *Record) { r.User, r.Sender = "web\x00host", "\x00bob@example.org\x00" },
		func(r *Record) { r.Identity, r.Sender, r.TraceToken, r.MessageID = long, long, long, "<"+long+">" },
		func(r *Record) { r.Domain, r.Identity, r.User = "ÉXAMPLE.Net", "ÄLICE@exämple", "Ωmega" },
		func(r *Record) { r.Domain, r.Identity, r.Sender = "\xff\xfeexample", "a\xc3", "\xe2\x82" },
		func(r *Record) { r.MessageID, r.TraceToken = "  <ID@Example.COM>  ", "tt\x00x" },
		func(r *Record) {
			r.Domain, r.User, r.Identity, r.Sender, r.MessageID, r.TraceToken = "", "", "", "", "", ""
		},
		func(r *Record) { r.ClientIP = netip.MustParseAddr("2001:db8::1") },
		func(r *Record) { r.ClientIP = netip.MustParseAddr("::ffff:192.0.2.1") },
		func(r *Record) { r.ClientIP = netip.MustParseAddr("fe80::1%eth0") },
		func(r *Record) { r.ClientIP = netip.Addr{} },
		func(r *Record) { r.ID = strings.ToLower(r.ID) },
	}
	for _, edge := range edges {
		r := benchRecord(rng, len(recs), next(), 50)
		edge(r)
		recs = append(recs, r)
	}
	for st := StatusAccepted; st < statusEnd; st++ {
		for v := VerdictNone; v < verdictEnd; v++ {
			r := benchRecord(rng, len(recs), next(), 50)
			r.Status, r.Verdict = st, v
			recs = append(recs, r)
		}
	}
	for len(recs) < n {
		recs = append(recs, benchRecord(rng, len(recs), next(), 300))
	}
	return recs
}

// TestKeysMatchReference: index keys, index values and rollup keys are
// those of the reference, in the same order.
func TestKeysMatchReference(t *testing.T) {
	for _, r := range diffRecords(2000) {
		if got, want := indexKeys(r), indexKeysRef(r); !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("%s: indexKeys = %x, want %x", r.ID, got, want)
		}
		if got, want := idxVal(r), idxValRef(r); !bytes.Equal(got, want) {
			t.Errorf("%s: idxVal = %x, want %x", r.ID, got, want)
		}
		if got, want := rollupKeys(r), rollupKeysRef(r); !slices.Equal(got, want) {
			t.Errorf("%s: rollupKeys = %q, want %q", r.ID, got, want)
		}
		for _, g := range allGroups {
			if got, want := string(appendGroupKey(nil, r, g, normValue(r.Domain, true))), groupKeyRef(r, g); got != want {
				t.Errorf("%s: group %d key = %q, want %q", r.ID, g, got, want)
			}
		}
		for _, v := range []string{r.User, r.Domain, r.Identity, r.MessageID, ""} {
			if got, want := idxPrefix(idxUser, v), idxPrefixRef(idxUser, v); !bytes.Equal(got, want) {
				t.Errorf("idxPrefix(%q) = %x, want %x", v, got, want)
			}
			if got, want := domainHash(v), domainHashRef(v); got != want {
				t.Errorf("domainHash(%q) = %x, want %x", v, got, want)
			}
		}
	}
	if got, want := rollupKey(granDay, 20000, ClassSpam, GroupSender, "d\x00k"), rollupKeyRef(granDay, 20000, ClassSpam, GroupSender, "d\x00k"); !bytes.Equal(got, want) {
		t.Errorf("rollupKey = %x, want %x", got, want)
	}
}

// TestIDMatchesReference: ParseID, IDTime and idKey give the reference's
// results and errors, and every byte decodes as it did.
func TestIDMatchesReference(t *testing.T) {
	for c := range 256 {
		if got, want := decodeIDChar(byte(c)), decodeIDCharRef(byte(c)); got != want {
			t.Errorf("decodeIDChar(%q) = %d, want %d", byte(c), got, want)
		}
	}
	id := testID(testBase)
	ids := []string{
		id, strings.ToLower(id), strings.ToLower(id[:13]) + id[13:], "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "00000000000000000000000000",
		"8ZZZZZZZZZZZZZZZZZZZZZZZZZ", id[:25], id + "0", "", "I" + id[1:], id[:5] + "u" + id[6:], id[:5] + "é" + id[7:],
		id[:25] + "\x00", id[:25] + "\xff", "oooooooooooooooooooooooooo",
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 500 {
		b := []byte(id)
		for range 3 {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		ids = append(ids, string(b), testID(testBase.Add(time.Duration(rng.Int64N(int64(1000*time.Hour))))))
	}
	for _, s := range ids {
		checkIDReference(t, s)
	}
}

// FuzzIDReference: ParseID, IDTime and idKey agree with the reference on
// any input.
func FuzzIDReference(f *testing.F) {
	f.Add(testID(testBase))
	f.Add(strings.ToLower(testID(testBase)))
	f.Add("8ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("")
	f.Fuzz(checkIDReference)
}

func checkIDReference(t *testing.T, s string) {
	got, err := ParseID(s)
	want, wantErr := parseIDRef(s)
	if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) || errors.Is(err, ErrBadID) != errors.Is(wantErr, ErrBadID) {
		t.Errorf("ParseID(%q) = %q, %v; want %q, %v", s, got, err, want, wantErr)
	}
	gotT, err := IDTime(s)
	wantT, wantErr := idTimeRef(s)
	if !gotT.Equal(wantT) || gotT.Location() != wantT.Location() || fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Errorf("IDTime(%q) = %v, %v; want %v, %v", s, gotT, err, wantT, wantErr)
	}
	if got, want := idKey(s), idKeyRef(s); !bytes.Equal(got, want) {
		t.Errorf("idKey(%q) = %x, want %x", s, got, want)
	}
}

// applyFunc writes a round in a transaction: applyBolt or applyBoltRef.
type applyFunc func(tx *bbolt.Tx, batch []*op, errs []error, delta *qDelta) error

// diffWriter writes records and updates in rounds of a given size, with
// the new or the reference code.
type diffWriter struct {
	t     *testing.T
	db    *bbolt.DB
	apply applyFunc
	build func(*Record) *op
	// compress makes the quarantined content (the same for both).
	compress func([]byte) ([]byte, error)
}

var diffRaw = []byte(sampleRaw + strings.Repeat("Lorem ipsum dolor sit amet.\r\n", 40))

// op makes the op that Append or Quarantine would make of rec.
func (w *diffWriter) op(rec *Record) *op {
	r := *rec
	if err := r.validate(); err != nil {
		w.t.Fatal(err)
	}
	if r.Status != StatusQuarantined {
		return w.build(&r)
	}
	content, err := w.compress(diffRaw)
	if err != nil {
		w.t.Fatal(err)
	}
	r.Quarantine = &QuarantineInfo{RawSize: int64(len(diffRaw)), StoredSize: int64(len(content))}
	o := w.build(&r)
	o.content = content
	return o
}

func (w *diffWriter) round(batch []*op) {
	errs := make([]error, len(batch))
	err := w.db.Update(func(tx *bbolt.Tx) error {
		var delta qDelta
		return w.apply(tx, batch, errs, &delta)
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		w.t.Fatal(err)
	}
}

// write writes recs in rounds of size, then, in rounds of size, a
// complaint on every third record and a release of every quarantined
// one (whose index entries move with its status).
func (w *diffWriter) write(recs []*Record, size int) {
	var batch []*op
	flush := func() {
		if len(batch) > 0 {
			w.round(batch)
			batch = batch[:0]
		}
	}
	for _, r := range recs {
		batch = append(batch, w.op(r))
		if len(batch) == size {
			flush()
		}
	}
	flush()
	for i, r := range recs {
		id, _ := ParseID(r.ID)
		if i%3 == 0 {
			batch = append(batch, &op{id: id, update: complain(testBase.Add(time.Duration(i) * time.Minute))})
		}
		if r.Status == StatusQuarantined {
			batch = append(batch, &op{id: id, update: release(testBase.Add(time.Duration(i) * time.Minute))})
		}
		if len(batch) >= size {
			flush()
		}
	}
	flush()
}

// complain is AddComplaint's update.
func complain(at time.Time) func(*Record) error {
	return func(r *Record) error {
		r.Complaints++
		if at.After(r.LastComplaint) {
			r.LastComplaint = at.UTC()
		}
		return nil
	}
}

// release marks a quarantined record released, as Release does.
func release(at time.Time) func(*Record) error {
	return func(r *Record) error {
		r.Status = StatusReleased
		r.Quarantine.ReleasedAt, r.Quarantine.ReleasedBy = at.UTC(), "admin"
		return nil
	}
}

// dumpDB returns every key and value of every bucket of db, in order, as
// "bucket key = value" lines.
func dumpDB(t *testing.T, db *bbolt.DB) []string {
	t.Helper()
	var lines []string
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			lines = append(lines, fmt.Sprintf("bucket %s", name))
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("bucket %s: nested bucket %x", name, k)
				}
				lines = append(lines, fmt.Sprintf("%s %x = %x", name, k, v))
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// sameDB reports the first difference between two databases' contents,
// or "" if they hold the same bytes.
func sameDB(t *testing.T, got, want *bbolt.DB) string {
	g, w := dumpDB(t, got), dumpDB(t, want)
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("entry %d: got\n\t%s\nwant\n\t%s", i, g[i], w[i])
		}
	}
	if len(g) != len(w) {
		return fmt.Sprintf("got %d entries, want %d", len(g), len(w))
	}
	return ""
}

// openDiffStore opens a store (whose buckets New creates) on a fresh
// database.
func openDiffStore(t *testing.T) (*Store, *bbolt.DB) {
	db, _ := openDB(t, true)
	s, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, db
}

// TestStoreWritesReferenceBytes writes the same records and updates with
// the reference code and with the new, in rounds of several sizes and
// through the store's API, and compares every bucket's keys and values.
func TestStoreWritesReferenceBytes(t *testing.T) {
	recs := diffRecords(1500)
	ref, refDB := openDiffStore(t)
	(&diffWriter{t: t, db: refDB, apply: applyBoltRef, build: newRecordOpRef, compress: ref.compress}).write(recs, 100)
	lines := dumpDB(t, refDB)
	for _, b := range [][]byte{bucketLog, bucketIndex, bucketMsg, bucketRollup, bucketMeta} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, string(b)+" ") {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("the reference wrote nothing in %s", b)
		}
		t.Logf("%s: %d entries", b, n)
	}

	for _, size := range []int{1, 7, 100, 2000} {
		t.Run(fmt.Sprintf("rounds=%d", size), func(t *testing.T) {
			s, db := openDiffStore(t)
			(&diffWriter{t: t, db: db, apply: applyBolt, build: newRecordOp, compress: s.compress}).write(recs, size)
			if d := sameDB(t, db, refDB); d != "" {
				t.Errorf("the store's bytes differ from the reference's: %s", d)
			}
		})
	}

	t.Run("api", func(t *testing.T) {
		s, db := openDiffStore(t)
		ctx := context.Background()
		for i, r := range recs {
			var err error
			switch {
			case r.Status == StatusQuarantined:
				err = s.Quarantine(ctx, r, diffRaw)
			case i%3 == 0:
				err = s.AppendCoalesced(ctx, r)
			case i%3 == 1:
				err = s.AppendWait(ctx, r)
			default:
				err = s.Append(r)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		flush(t, s)
		var ops []*op
		for i, r := range recs {
			id, _ := ParseID(r.ID)
			if i%3 == 0 {
				if err := s.AddComplaint(ctx, id, Complaint{Time: testBase.Add(time.Duration(i) * time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			if r.Status == StatusQuarantined {
				ops = append(ops, &op{id: id, update: release(testBase.Add(time.Duration(i) * time.Minute))})
			}
		}
		// Release needs a next hop and takes its time from the clock:
		// its update goes to the committer as it is.
		for _, o := range ops {
			if err := s.submit(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		if d := sameDB(t, db, refDB); d != "" {
			t.Errorf("the store's bytes differ from the reference's: %s", d)
		}
	})
}

// TestSameDBFindsOneByte: the comparison of TestStoreWritesReferenceBytes
// sees a single byte changed in one key or one value.
func TestSameDBFindsOneByte(t *testing.T) {
	recs := diffRecords(50)
	sa, a := openDiffStore(t)
	(&diffWriter{t: t, db: a, apply: applyBoltRef, build: newRecordOpRef, compress: sa.compress}).write(recs, 10)
	for _, value := range []bool{false, true} {
		sb, b := openDiffStore(t)
		(&diffWriter{t: t, db: b, apply: applyBolt, build: newRecordOp, compress: sb.compress}).write(recs, 10)
		if d := sameDB(t, b, a); d != "" {
			t.Fatalf("before the change: %s", d)
		}
		err := b.Update(func(tx *bbolt.Tx) error {
			rb := tx.Bucket(bucketRollup)
			k, v := rb.Cursor().Last()
			k, v = bytes.Clone(k), bytes.Clone(v)
			if err := rb.Delete(k); err != nil {
				return err
			}
			if value {
				v[len(v)-1]++
			} else {
				k[len(k)-1]++
			}
			return rb.Put(k, v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if sameDB(t, b, a) == "" {
			t.Errorf("a byte changed in a rollup (value %v) went unseen", value)
		}
	}
}
