package quarantine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/bbolt"

	"github.com/outguard/outguard/internal/pgdb/pgtest"
)

// TestSpoolShipIdempotent: a node that died after shipping a spooled
// record to PostgreSQL but before removing it from its spool ships it
// again at the next start; the log and the report rollups have it once,
// the other spooled record is shipped, and the spool ends empty.
func TestSpoolShipIdempotent(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	db, _ := openDB(t, true)
	at := time.Now().Add(-time.Hour)
	shipped := sampleRecord(at, StatusAccepted, VerdictClean)
	waiting := sampleRecord(at.Add(time.Second), StatusAccepted, VerdictClean)

	a, err := NewPostgres(pool, Options{Node: "node-a", Spool: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AppendWait(ctx, shipped); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	var once int64
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(n_all + n_accepted + n_rejected + n_other + n_clean + n_spam + n_phishing + n_virus), 0) FROM quarantine_counts`).Scan(&once); err != nil || once == 0 {
		t.Fatalf("rollups after one record: %d, %v", once, err)
	}
	// What the spool held at the crash: the shipped record and one more.
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSpool)
		for _, r := range []*Record{shipped, waiting} {
			if err := b.Put([]byte(r.ID), encodeRecord(nil, r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	b := newPGStore(t, pool, Options{Node: "node-a", Spool: db, Registerer: reg, ProbeInterval: 10 * time.Millisecond})
	deadline := time.Now().Add(30 * time.Second)
	for b.SpoolRecords() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still spooled after 30s", b.SpoolRecords())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var n int
	var sum int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_log), (SELECT sum(n_all + n_accepted + n_rejected + n_other + n_clean + n_spam + n_phishing + n_virus) FROM quarantine_counts)`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d log records, want 2 (the re-shipped one once)", n)
	}
	if sum != 2*once {
		t.Errorf("rollup total %d, want %d: the re-shipped record was counted again", sum, 2*once)
	}
	for _, r := range []*Record{shipped, waiting} {
		got, err := b.Get(r.ID)
		if err != nil || got.MessageID != r.MessageID {
			t.Errorf("record %s after shipping: %+v, %v", r.ID, got, err)
		}
	}
	if got := testutil.ToFloat64(b.spool.shipped); got != 2 {
		t.Errorf("outguard_store_spool_shipped_total = %v, want 2", got)
	}
	if st := b.State(); st != StateOK {
		t.Errorf("state after shipping: %v, want ok", st)
	}
}

// TestSpoolRoundWhileDown: while PostgreSQL is marked out of reach, a
// record is written to the spool (and waited for), a quarantined message
// is refused with ErrDegraded and keeps nothing, and past the bound
// records are refused with ErrSpoolFull and Writable fails.
func TestSpoolRoundWhileDown(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	db, _ := openDB(t, true)
	reg := prometheus.NewRegistry()
	s := newPGStore(t, pool, Options{Node: "node-a", Spool: db, SpoolMax: 2, ProbeInterval: time.Hour, Registerer: reg})
	s.spool.down.Store(true)
	at := time.Now().Add(-time.Hour)
	if err := s.AppendCoalesced(ctx, sampleRecord(at, StatusAccepted, VerdictClean)); err != nil {
		t.Fatalf("record while down: %v, want it spooled", err)
	}
	if got := s.State(); got != StateSpooling {
		t.Errorf("state: %v, want spooling", got)
	}
	if err := s.Writable(); err != nil {
		t.Errorf("Writable with room in the spool: %v", err)
	}
	q := sampleRecord(at.Add(time.Second), StatusQuarantined, VerdictSpam)
	if err := s.Quarantine(ctx, q, []byte(sampleRaw)); !errors.Is(err, ErrDegraded) {
		t.Errorf("quarantine while down: %v, want ErrDegraded", err)
	}
	if err := s.AppendWait(ctx, sampleRecord(at.Add(2*time.Second), StatusAccepted, VerdictClean)); err != nil {
		t.Fatalf("second record: %v", err)
	}
	if err := s.AppendWait(ctx, sampleRecord(at.Add(3*time.Second), StatusAccepted, VerdictClean)); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("record past the bound: %v, want ErrSpoolFull", err)
	}
	if err := s.Writable(); !errors.Is(err, ErrUnwritable) || !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Writable with a full spool: %v", err)
	}
	if got := s.State(); got != StateUnwritable {
		t.Errorf("state with a full spool: %v, want unwritable", got)
	}
	gauges := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "state" {
					name += "/" + l.GetValue()
				}
			}
			if m.GetGauge() != nil {
				gauges[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"outguard_store_state/unwritable":  1,
		"outguard_store_state/spooling":    0,
		"outguard_store_state/ok":          0,
		"outguard_store_spool_records":     2,
		"outguard_store_spool_max_records": 2,
	} {
		if gauges[name] != want {
			t.Errorf("%s = %v, want %v", name, gauges[name], want)
		}
	}
	if age := gauges["outguard_store_spool_oldest_age_seconds"]; age < 3000 || age > 4000 {
		t.Errorf("outguard_store_spool_oldest_age_seconds = %v, want about an hour (the oldest record's id)", age)
	}
	if gauges["outguard_store_spool_bytes"] <= 0 {
		t.Errorf("outguard_store_spool_bytes = %v", gauges["outguard_store_spool_bytes"])
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM quarantine_log) + (SELECT count(*) FROM quarantine_content)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows in PostgreSQL while down: %d, %v", n, err)
	}
	var spooled int
	db.View(func(tx *bbolt.Tx) error { spooled = tx.Bucket(bucketSpool).Stats().KeyN; return nil })
	if spooled != 2 {
		t.Errorf("spool holds %d records, want 2", spooled)
	}
	// The database answers: the shipper takes the spool there.
	s.spool.down.Store(false)
	s.ship()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM quarantine_log`).Scan(&n); err != nil || n != 2 {
		t.Errorf("log records after shipping: %d, %v; want 2", n, err)
	}
	if s.SpoolRecords() != 0 || s.State() != StateOK {
		t.Errorf("after shipping: %d spooled, state %v", s.SpoolRecords(), s.State())
	}
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"eof", context.DeadlineExceeded, true},
		{"also", errAlso{errors.New("x")}, false},
		{"plain", errors.New("something odd"), false},
		{"closed", errors.New("conn closed"), true},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
