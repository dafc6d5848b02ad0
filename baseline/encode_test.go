package baseline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

// sampleProfiles returns profiles made by real observations: empty, new,
// an office identity, a newsletter with saturated domain sketches.
func sampleProfiles(t testing.TB) map[string]Profile {
	d := newDetector(t, Options{})
	d.Observe("new", monday.Add(9*time.Hour), 3, []string{"a.example", "b.example"})
	for day := range 10 {
		h := monday.AddDate(0, 0, day).Add(9 * time.Hour)
		sendHour(d, "office", h, 6, 2, fewDomains("a.example", "b.example", "c.example"))
		sendHour(d, "news", h.Add(time.Hour), 300, 1, func(i int) []string { return []string{fmt.Sprintf("d%d.example", i+day*100)} })
	}
	out := map[string]Profile{"zero": {}}
	for _, k := range []string{"new", "office", "news"} {
		p, _ := d.Load(k)
		out[k] = p
	}
	return out
}

func TestEncodeRoundTrip(t *testing.T) {
	for name, p := range sampleProfiles(t) {
		t.Run(name, func(t *testing.T) {
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > maxEncodedLen {
				t.Errorf("encoded in %d bytes, more than maxEncodedLen %d", len(b), maxEncodedLen)
			}
			var q Profile
			if err := q.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if q != p {
				t.Errorf("decoded profile differs:\n got %+v\nwant %+v", q, p)
			}
			t.Logf("%s: %d bytes encoded", name, len(b))
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	office := sampleProfiles(t)["office"]
	good, _ := office.MarshalBinary()
	// Build bad encodings by re-encoding a profile with a field out of range.
	withField := func(mod func(*Profile)) []byte {
		p := sampleProfiles(t)["office"]
		mod(&p)
		b, _ := p.MarshalBinary()
		return b
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"level 3", withField(func(p *Profile) { p.level = 3 })},
		{"NaN mean", withField(func(p *Profile) { p.usual[0] = float32(math.NaN()) })},
		{"infinite peak", withField(func(p *Profile) { p.peak[1] = float32(math.Inf(1)) })},
		{"negative mean", withField(func(p *Profile) { p.perMsg = -1 })},
		{"share above 1", withField(func(p *Profile) { p.newShare = 1.5 })},
		{"state without first hour", withField(func(p *Profile) { p.first, p.hour = 0, 0 })},
		{"hour overflow", func() []byte {
			b := []byte{encodingVersion}
			b = binary.AppendUvarint(b, math.MaxUint32)
			b = binary.AppendUvarint(b, 1)
			return b
		}()},
		{"mask past the sketch", func() []byte {
			var p Profile
			b, _ := p.MarshalBinary()
			b = b[:len(b)-1]
			return binary.AppendUvarint(b, 1<<sketchWords)
		}()},
		{"zero word marked present", func() []byte {
			var p Profile
			b, _ := p.MarshalBinary()
			b = b[:len(b)-1]
			b = binary.AppendUvarint(b, 1)
			return binary.LittleEndian.AppendUint64(b, 0)
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := sampleProfiles(t)["new"]
			before := p
			err := p.UnmarshalBinary(c.data)
			if !errors.Is(err, ErrEncoding) {
				t.Fatalf("got %v, want ErrEncoding", err)
			}
			if p != before {
				t.Error("a failed decode changed the profile")
			}
		})
	}
}

// FuzzProfileDecode: a decoded profile re-encodes to bytes that decode to
// the same profile, and can be observed and judged without panic.
func FuzzProfileDecode(f *testing.F) {
	for _, p := range sampleProfiles(f) {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{encodingVersion})
	m := newModel(Options{}.withDefaults())
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Profile
		if err := p.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrEncoding) {
				t.Fatalf("error %v does not wrap ErrEncoding", err)
			}
			return
		}
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var q Profile
		if err := q.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if q != p {
			t.Fatalf("re-encoding decodes to a different profile")
		}
		b2, _ := q.MarshalBinary()
		if string(b2) != string(b) {
			t.Fatal("encoding is not stable")
		}
		v := p.observe(&m, hourTime(p.hour).Add(30*time.Minute), 5, []string{"a.example", "b.example"}, nil)
		if v.Level > Lock || math.IsNaN(v.Factor) || math.IsNaN(v.PeakFactor) {
			t.Fatalf("verdict on a decoded profile: %+v", v)
		}
		p.observe(&m, hourTime(p.hour).Add(30*time.Hour), 1, nil, nil)
	})
}

// FuzzObserve feeds arbitrary keys, domain names, recipient counts and
// clock steps (forwards, backwards, far ahead) to a small Detector and
// checks that verdicts stay sane and every profile survives encoding.
func FuzzObserve(f *testing.F) {
	f.Add("example.com/alice", "a.example,B.EXAMPLE.,,c.example", 3, []byte{0, 0, 1, 2, 255, 3, 128})
	f.Add("", "\x00\xff,.", -5, []byte{200, 201, 202})
	f.Fuzz(func(t *testing.T, key, domainList string, recipients int, steps []byte) {
		if len(steps) > 512 {
			steps = steps[:512]
		}
		evicted := false
		d := newDetector(t, Options{MaxProfiles: 2, Shards: 1, OnEvict: func(k string, _ Profile) {
			evicted = evicted || k == key
		}})
		var domains []string
		for d := range splitComma(domainList) {
			domains = append(domains, d)
		}
		at := monday
		level := Level(0)
		hour := time.Time{}
		for i, b := range steps {
			switch {
			case b == 255:
				at = at.Add(5000 * time.Hour)
			case b >= 200:
				at = at.Add(-time.Duration(b-199) * time.Hour) // the clock goes back
			default:
				at = at.Add(time.Duration(b) * time.Minute)
			}
			k := key
			if b%3 == 0 {
				k = fmt.Sprint(key, i%3) // more keys than places: evictions
			}
			v := d.Observe(k, at, recipients, domains[:int(b)%(len(domains)+1)])
			if v.Level > Lock || math.IsNaN(v.Factor) || math.IsNaN(v.PeakFactor) || v.Value < 0 {
				t.Fatalf("step %d: verdict %+v", i, v)
			}
			if k == key {
				if !v.Hour.Equal(hour) || evicted {
					evicted = false
					hour, level = v.Hour, None
				}
				if v.Escalated != (v.Level > level) || v.Level < level {
					t.Fatalf("step %d: level %v after %v, escalated %v", i, v.Level, level, v.Escalated)
				}
				level = v.Level
			}
			p, ok := d.Load(k)
			if !ok {
				t.Fatalf("step %d: %q not in memory right after Observe", i, k)
			}
			b, _ := p.MarshalBinary()
			var q Profile
			if err := q.UnmarshalBinary(b); err != nil || q != p {
				t.Fatalf("step %d: round trip: %v", i, err)
			}
		}
	})
}

func splitComma(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			i := 0
			for i < len(s) && s[i] != ',' {
				i++
			}
			if !yield(s[:i]) {
				return
			}
			if i == len(s) {
				return
			}
			s = s[i+1:]
		}
	}
}
