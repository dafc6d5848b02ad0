package quarantine

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// A "contains" filter on PostgreSQL reads a pg_trgm GIN index
// (0104_quarantine_trgm.sql), which looks up each trigram of the text
// searched for in each day's partition. A trigram found in most records
// ("exa", "com") costs a long posting list per partition and narrows
// nothing, so the index is asked only for the rarer trigrams of the text
// (as LIKE patterns of the parts of the text that hold them), and the
// whole text is checked on the rows it finds (strpos): the same rows, for
// a fraction of the index reads. Which trigrams are rare is estimated from
// the planner's statistics of the newest partitions (their most common
// values and histogram), which autovacuum keeps current.

// trigramCommon: a trigram is too common to look up when more than this
// share of a column's values hold it.
const trigramCommon = 0.3

// trigramKeys is the most trigrams looked up for one filter, the rarest.
const trigramKeys = 6

// trigramStatsAge is how long a column's sample is used before it is
// read again.
const trigramStatsAge = 10 * time.Minute

// trigramStatsRetry is how soon statistics are read again when none were
// found.
const trigramStatsRetry = 30 * time.Second

// colSample is a weighted sample of a column's values.
type colSample struct {
	vals    []string
	weights []float64
}

// share returns the estimated share of the column's values containing t.
func (c *colSample) share(t string) float64 {
	var n float64
	for i, v := range c.vals {
		if strings.Contains(v, t) {
			n += c.weights[i]
		}
	}
	return n
}

// trigramStats caches the samples of the "contains" columns.
type trigramStats struct {
	mu      sync.Mutex
	read    time.Time
	samples map[string]*colSample
}

// sample returns the sample of column col, reading the statistics of
// the newest five partitions that have any (the days created ahead, and
// a day autovacuum has not analysed yet, have none) when the cache is
// older than trigramStatsAge; nil when there are none (a new database),
// and then they are read again after trigramStatsRetry.
func (b *pgBackend) sample(ctx context.Context, col string) *colSample {
	st := &b.trgm
	st.mu.Lock()
	defer st.mu.Unlock()
	if age := time.Since(st.read); st.samples != nil && (age < trigramStatsRetry || len(st.samples) > 0 && age < trigramStatsAge) {
		return st.samples[col]
	}
	st.read = time.Now()
	st.samples = make(map[string]*colSample)
	// Searches wait for it: a short bound, then the whole needle is
	// looked up until the next try.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rows, err := b.pool.Query(ctx, `SELECT attname::text, coalesce(most_common_vals::text::text[], '{}'),
			coalesce(most_common_freqs, '{}'), coalesce(histogram_bounds::text::text[], '{}')
		FROM pg_stats WHERE schemaname = current_schema() AND attname IN ('sender', 'subject', 'rcpts')
			AND tablename IN (SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
				WHERE i.inhparent = 'quarantine_log'::regclass
					AND EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = c.relname)
				ORDER BY c.relname DESC LIMIT 5)`)
	if err != nil {
		return nil // the whole text is looked up
	}
	defer rows.Close()
	// Each partition's sample weighs alike: its most common values by
	// their frequency, the rest spread over its histogram's bounds.
	type part struct {
		vals    []string
		weights []float64
	}
	parts := make(map[string][]part)
	for rows.Next() {
		var name string
		var mcv, hist []string
		var freqs []float32
		if err := rows.Scan(&name, &mcv, &freqs, &hist); err != nil {
			return nil
		}
		var p part
		rest := 1.0
		for i, v := range mcv {
			if i < len(freqs) {
				p.vals = append(p.vals, v)
				p.weights = append(p.weights, float64(freqs[i]))
				rest -= float64(freqs[i])
			}
		}
		for _, v := range hist {
			p.vals = append(p.vals, v)
			p.weights = append(p.weights, max(rest, 0)/float64(len(hist)))
		}
		if len(p.vals) > 0 {
			parts[name] = append(parts[name], p)
		}
	}
	if rows.Err() != nil {
		return nil
	}
	for name, ps := range parts {
		s := new(colSample)
		for _, p := range ps {
			s.vals = append(s.vals, p.vals...)
			for _, w := range p.weights {
				s.weights = append(s.weights, w/float64(len(ps)))
			}
		}
		st.samples[name] = s
	}
	return st.samples[col]
}

// lookupKeys returns the parts of needle the trigram index is asked for:
// the runs of needle holding its rarest trigrams of ASCII letters and
// digits (at most trigramKeys of them, each in at most trigramCommon of
// the values of sample), or nil when it has none or no sample is known
// (the whole needle is looked up).
func lookupKeys(needle string, sample *colSample) []string {
	if sample == nil || len(sample.vals) == 0 {
		return nil
	}
	type tri struct {
		at    int
		share float64
	}
	var tris []tri
	for p := 0; p+3 <= len(needle); p++ {
		t := needle[p : p+3]
		if !asciiAlnum(t[0]) || !asciiAlnum(t[1]) || !asciiAlnum(t[2]) {
			continue
		}
		if sh := sample.share(t); sh <= trigramCommon {
			tris = append(tris, tri{p, sh})
		}
	}
	if len(tris) == 0 {
		return nil
	}
	slices.SortStableFunc(tris, func(a, b tri) int { return cmp.Compare(a.share, b.share) })
	tris = tris[:min(len(tris), trigramKeys)]
	slices.SortFunc(tris, func(a, b tri) int { return cmp.Compare(a.at, b.at) })
	// Trigrams next to each other make one part.
	var keys []string
	start, end := tris[0].at, tris[0].at+3
	for _, t := range tris[1:] {
		if t.at == end-2 {
			end++
			continue
		}
		keys = append(keys, needle[start:end])
		start, end = t.at, t.at+3
	}
	return append(keys, needle[start:end])
}

func asciiAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
