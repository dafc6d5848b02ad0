package quarantine

import (
	"encoding/hex"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	full := sampleRecord(testBase, StatusQuarantined, VerdictVirus)
	full.Complaints = 3
	full.LastComplaint = testBase.Add(time.Hour)
	full.Quarantine = &QuarantineInfo{RawSize: 100, StoredSize: 60, ReleasedAt: testBase.Add(2 * time.Hour), ReleasedBy: "ops", ReleaseReason: "customer confirmed", ReleaseLearn: true, Expired: true}
	full.Partial = []string{"archive_encrypted", "max_depth"}
	full.Campaign = "0C8ZK2M4Q7R9T1VW"
	full.IdentitySource = "header X-AuthUser"
	full.IdentityReason = "header X-AuthUser: 2 occurrences with different values (occurrence: only)"
	v6 := sampleRecord(testBase, StatusFailed, VerdictClean)
	v6.ClientIP = netip.MustParseAddr("2001:db8::1")
	cases := []struct {
		name string
		rec  *Record
	}{
		{"full", full},
		{"minimal", &Record{ID: testID(testBase), Status: StatusDeferred}},
		{"ipv6 client", v6},
		{"time before the id", &Record{ID: testID(testBase), Time: testBase.Add(-time.Second), Status: StatusRejected}},
		{"negative score", &Record{ID: testID(testBase), Status: StatusAccepted, Score: -2.25}},
		{"score with many decimals", &Record{ID: testID(testBase), Status: StatusAccepted, Score: 1.0 / 3}},
		{"score 0.29", &Record{ID: testID(testBase), Status: StatusAccepted, Score: 0.29}},
		{"infinite score", &Record{ID: testID(testBase), Status: StatusAccepted, Score: math.Inf(1)}},
		{"NUL and UTF-8 in fields", &Record{ID: testID(testBase), Status: StatusAccepted, Subject: "h\x00é€", Identity: "a\x00b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := *tc.rec
			if err := want.validate(); err != nil {
				t.Fatal(err)
			}
			want.Time = want.Time.UTC()
			b := encodeRecord(nil, &want)
			got, err := decodeRecord(want.ID, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("got  %+v\nwant %+v", got, &want)
			}
		})
	}
}

// v2Record is a record as codec version 2 (before Partial) wrote it.
const v2Record = "02a0d1e0c4e3a4f76f0a7375626d697373696f6e04c000020abbb90208776562686f7374310f6f75742e6578616d706c652e6e657416616c69636540637573746f6d65722e6578616d706c6516616c69636540637573746f6d65722e6578616d706c65020f626f62406578616d706c652e6f7267f40308322e302e30204f6b116361726f6c406578616d706c652e6f7267cd0812352e312e31206e6f207375636820757365721e416c696365203c616c69636540637573746f6d65722e6578616d706c653e11517561727465726c79206e756d62657273283c313739353836303030303030303030303030302e3240637573746f6d65722e6578616d706c653ec2430204b81702156275696c74696e3a55524c5f53484f5254454e455211727370616d643a42415945535f5350414d1c32353020322e302e30204f6b3a20717565756564206173203458797a8096acdb011674742d313739353836303030303030303030303030300000000206736565642d31047370616d"

// TestDecodeVersion2: records written before the partially-scanned flag
// stay readable, without the flag.
func TestDecodeVersion2(t *testing.T) {
	b, err := hex.DecodeString(v2Record)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRecord("01KB5V1W00000000000000000A", b)
	if err != nil {
		t.Fatalf("decoding a version 2 record: %v", err)
	}
	if r.Partial != nil || r.Band != BandSpam || r.Model != "seed-1" || r.Learned != "spam" || r.Verdict != VerdictVirus || r.Subject != "Quarterly numbers" {
		t.Errorf("got %+v", r)
	}
	// Written again, it is a current record with the same fields.
	again, err := decodeRecord(r.ID, encodeRecord(nil, r))
	if err != nil || !reflect.DeepEqual(again, r) {
		t.Errorf("re-encoded: %v\n got %+v\nwant %+v", err, again, r)
	}
}

func TestDecodeRecordRejectsCorruption(t *testing.T) {
	id := testID(testBase)
	good := encodeRecord(nil, func() *Record { r := sampleRecord(testBase, StatusAccepted, VerdictClean); r.ID = id; return r }())
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(slices.Clone(good), 0)},
		{"huge string length", []byte{codecVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"huge list length", append([]byte{codecVersion, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0x7f)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeRecord(id, tc.b); !errors.Is(err, errCorrupt) {
				t.Errorf("got %v, want errCorrupt", err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	id := testID(testBase)
	for _, r := range []*Record{
		sampleRecord(testBase, StatusQuarantined, VerdictSpam),
		{ID: id, Status: StatusAccepted},
		{ID: id, Status: StatusAccepted, Partial: []string{"max_parts"}},
	} {
		r.ID = id
		_ = r.validate()
		r.Quarantine = &QuarantineInfo{RawSize: 1}
		f.Add(encodeRecord(nil, r))
	}
	f.Add([]byte{codecVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(id, b)
		if err != nil {
			return
		}
		// What decodes must survive an encode/decode round trip (the
		// bytes may differ: varints have non-minimal forms).
		again, err := decodeRecord(id, encodeRecord(nil, r))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if math.IsNaN(r.Score) {
			r.Score, again.Score = 0, 0
		}
		if !reflect.DeepEqual(again, r) {
			t.Errorf("round trip differs:\n got %+v\nwant %+v", again, r)
		}
	})
}

func TestNewID(t *testing.T) {
	// The other tests date their records with testID: NewID is
	// process-wide and does not go back, so only the clock's time is sure
	// to be in its ids.
	at := time.Now().Truncate(time.Millisecond)
	prev := ""
	for i := range 1000 {
		id := NewID(at)
		if len(id) != IDLen {
			t.Fatalf("got %q, want %d characters", id, IDLen)
		}
		if id <= prev {
			t.Fatalf("id %d: got %s after %s, want increasing ids within one millisecond", i, id, prev)
		}
		prev = id
		got, err := IDTime(id)
		if err != nil || !got.Equal(at) {
			t.Fatalf("IDTime(%s) = %v, %v; want %v", id, got, err, at)
		}
	}
	// The clock going back does not make an id that sorts first.
	if id := NewID(at.Add(-time.Second)); id <= prev {
		t.Errorf("after the clock went back: got %s after %s, want increasing ids", id, prev)
	}
	if a, b := NewID(at.Add(time.Millisecond)), NewID(at.Add(2*time.Millisecond)); a >= b {
		t.Errorf("got %s >= %s, want ids ordered by time", a, b)
	}
	if a, b := idFloor(at), NewID(at); a > b {
		t.Errorf("idFloor %s > NewID %s", a, b)
	}
}

func TestParseID(t *testing.T) {
	good := testID(testBase)
	cases := []struct {
		name string
		in   string
		want string
		ok   bool
	}{
		{"canonical", good, good, true},
		{"lower case", strings.ToLower(good), good, true},
		{"empty", "", "", false},
		{"too short", good[:25], "", false},
		{"too long", good + "0", "", false},
		{"ambiguous letter", good[:25] + "U", "", false},
		{"overflowing first character", "8" + good[1:], "", false},
		{"path", "../../../../../../../../etc", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseID(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %q, %v; want %q, ok %v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadID) {
				t.Errorf("got %v, want ErrBadID", err)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(testID(testBase))
	f.Add("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if _, err := IDTime(id); err != nil {
			t.Errorf("IDTime(%q): %v", id, err)
		}
		if again, _ := ParseID(id); again != id {
			t.Errorf("ParseID not idempotent: %q -> %q", id, again)
		}
	})
}

func TestIDKey(t *testing.T) {
	prev := ""
	var prevKey []byte
	for i := range 200 {
		id := testID(testBase.Add(time.Duration(i*i) * time.Millisecond))
		k := idKey(id)
		if len(k) != keyLen || keyID(k) != id {
			t.Fatalf("idKey(%s) = %x, back %s", id, k, keyID(k))
		}
		if prev != "" && (id > prev) != (string(k) > string(prevKey)) {
			t.Fatalf("order differs: %s vs %s, keys %x vs %x", id, prev, k, prevKey)
		}
		prev, prevKey = id, k
	}
	if got := keyID(idKey("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")); got != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("largest id: got %s", got)
	}
}

// TestEncodedSizeHint: the hint holds the encoding of the test records,
// so that newRecordOp encodes them without growing its buffer.
func TestEncodedSizeHint(t *testing.T) {
	r := sampleRecord(testBase, StatusQuarantined, VerdictSpam)
	r.Quarantine = &QuarantineInfo{RawSize: 1 << 40, StoredSize: 1 << 40, ReleasedAt: testBase, ReleasedBy: "admin", DeletedAt: testBase, DeletedBy: "admin", ReleaseReason: "fp"}
	r.LastComplaint, r.Complaints = testBase, 1<<30
	r.ClientIP = netip.MustParseAddr("2001:db8::1")
	recs := append(diffRecords(200), r, &Record{ID: testID(testBase), Status: StatusAccepted})
	for _, r := range recs {
		if got, hint := len(encodeRecord(nil, r)), encodedSizeHint(r); got > hint {
			t.Errorf("%s: encoding of %d bytes, hint %d", r.ID, got, hint)
		}
	}
}
