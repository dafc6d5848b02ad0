package quarantine

import (
	"context"
	"encoding/hex"
	"reflect"
	"testing"
)

// v5Released is a released record as codec version 5 (before the
// release's reason and learn request) wrote it, under v5ReleasedID.
const (
	v5ReleasedID = "01KJMMA2G0B8PE9JFRP1Q2MANG"
	v5Released   = "05a0d196010a7375626d697373696f6e04c000020abbb90208776562686f7374310f6f75742e6578616d706c652e6e657416616c69636540637573746f6d65722e6578616d706c6516616c69636540637573746f6d65722e6578616d706c65020f626f62406578616d706c652e6f7267f40308322e302e30204f6b116361726f6c406578616d706c652e6f7267cd0812352e312e31206e6f207375636820757365721e416c696365203c616c69636540637573746f6d65722e6578616d706c653e11517561727465726c79206e756d62657273283c313737323336363430303030303030303030302e3640637573746f6d65722e6578616d706c653ec2430602b81702156275696c74696e3a55524c5f53484f5254454e455211727370616d643a42415945535f5350414d1c32353020322e302e30204f6b3a20717565756564206173203458797a8096acdb011674742d31373732333636343030303030303030303030000001c801788080bed4c299de9831036f7073000000000000000000"
)

// TestDecodeVersion5Released: a release recorded before reasons were kept
// stays readable, without a reason, and is written again as version 6.
func TestDecodeVersion5Released(t *testing.T) {
	b, err := hex.DecodeString(v5Released)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord(v5ReleasedID, b)
	if err != nil {
		t.Fatalf("decoding a version 5 record: %v", err)
	}
	q := r.Quarantine
	if q == nil || !q.Released() || q.ReleasedBy != "ops" || q.ReleaseReason != "" || q.ReleaseLearn || r.Status != StatusReleased {
		t.Fatalf("got %+v, quarantine %+v", r, q)
	}
	q.ReleaseReason, q.ReleaseLearn = "customer confirmed", true
	again, err := decodeRecord(r.ID, encodeRecord(nil, r))
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Errorf("re-encoded: %v\n got %+v\nwant %+v", err, again.Quarantine, r.Quarantine)
	}
}

// TestReleaseRecordsReason releases through each backend and reads the
// reason and the learn request back from the log record.
func TestReleaseRecordsReason(t *testing.T) {
	eachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		fd := &fakeDeliver{}
		s, _ := newTestStore(t, Options{Deliver: fd.Deliver})
		rec := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
		if err := s.Quarantine(ctx, rec, []byte(sampleRaw)); err != nil {
			t.Fatal(err)
		}
		const why = "customer confirmed it is an invoice"
		res, err := s.Release(ctx, rec.ID, Actor{Name: "ops", Reason: why, Learn: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason != why {
			t.Errorf("result reason: got %q, want %q", res.Reason, why)
		}
		got, err := s.Get(rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		q := got.Quarantine
		if got.Status != StatusReleased || q.ReleasedBy != "ops" || q.ReleaseReason != why || !q.ReleaseLearn || q.ReleasedAt.IsZero() {
			t.Errorf("record after release: status %s, quarantine %+v", got.Status, q)
		}
		again, err := s.Release(ctx, rec.ID, Actor{Name: "other", Reason: "again"})
		if err != nil || !again.Already || again.Reason != why || again.By != "ops" {
			t.Errorf("second release: %+v, %v; want already, with the first's reason", again, err)
		}
	})
}
