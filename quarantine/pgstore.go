package quarantine

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outguard/outguard/internal/pgdb"
)

// NewPostgres opens the store on the fleet's PostgreSQL database
// (store.backend postgres, docs/config-store.md), whose schema
// (internal/pgdb migrations) is applied. Every node of the fleet writes
// and reads the same log, quarantine and rollups; Options.Node names this
// node in its records. The caller closes the pool after Stop.
func NewPostgres(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("quarantine: nil PostgreSQL pool")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if opts.Node == "" {
		opts.Node, _ = os.Hostname()
	}
	s := newStore(opts)
	b := &pgBackend{pool: pool, s: s, days: make(map[int64]bool), roundTimeout: pgdb.RoundTimeout(pool)}
	s.be = b
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The partitions of today and the next days, so that the first
	// records do not wait for them.
	today := dayNumber(opts.Now())
	if err := b.ensureDays(ctx, []int64{today, today + 1, today + 2}); err != nil {
		return nil, err
	}
	if opts.Spool != nil {
		if err := s.openSpool(); err != nil {
			return nil, err
		}
	}
	if _, err := s.begin(); err != nil {
		return nil, err
	}
	if s.spool != nil {
		s.startSpool()
	}
	return s, nil
}

// pgBackend keeps the store in PostgreSQL; see 0100_quarantine.sql and
// 0102_quarantine_counts.sql.
type pgBackend struct {
	pool *pgxpool.Pool
	s    *Store
	// roundTimeout bounds a commit round (pgdb.RoundTimeout).
	roundTimeout time.Duration

	// days caches the UTC days whose log and content partitions exist.
	mu   sync.Mutex
	days map[int64]bool

	// trgm samples the "contains" columns for indexKey.
	trgm trigramStats
}

// Advisory lock keys of the store's partition work (any two int32).
const (
	pgLockClass      = 0x4f47 // "OG"
	pgLockPartitions = 100
	pgLockSweep      = 101
	// Releases lock (pgLockReleaseClass, hashtext(id)).
	pgLockReleaseClass = 0x4f51 // "OQ"
)

func (b *pgBackend) takes(also Also) bool { return also.PG != nil }

func dayNumber(t time.Time) int64 { return t.Unix() / 86400 }

func dayStart(d int64) time.Time { return time.Unix(d*86400, 0).UTC() }

func partitionName(table string, d int64) string {
	return table + "_p" + dayStart(d).Format("20060102")
}

// ensureDays creates the log and content partitions of the given days
// if they do not exist, under an advisory lock so that nodes take turns.
func (b *pgBackend) ensureDays(ctx context.Context, days []int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var missing []int64
	for _, d := range days {
		if !b.days[d] && !slices.Contains(missing, d) {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, pgLockClass, pgLockPartitions); err != nil {
			return err
		}
		for _, d := range missing {
			from, to := dayStart(d).Format(time.RFC3339), dayStart(d+1).Format(time.RFC3339)
			for _, t := range []string{"quarantine_log", "quarantine_content"} {
				sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
					partitionName(t, d), t, from, to)
				if _, err := tx.Exec(ctx, sql); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine: creating day partitions: %w", err)
	}
	for _, d := range missing {
		b.days[d] = true
	}
	return nil
}

// forgetDays empties the partition cache (another node dropped one).
func (b *pgBackend) forgetDays() {
	b.mu.Lock()
	clear(b.days)
	b.mu.Unlock()
}

// pgText makes s storable in a text column: valid UTF-8 without NUL.
// Search keys are compared through it on both sides, so a match in Go is
// a match in SQL.
func pgText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

func idTime(id string) time.Time {
	t, _ := IDTime(id)
	return t
}

// logRow holds the columns of new records, one slice per column, for an
// INSERT ... SELECT FROM unnest: one statement per round whatever its size.
type logRow struct {
	domain, id                      []string
	ts                              []time.Time
	status, verdict                 []int16
	usr, identity, msgid, trace, ip []string
	partial                         []bool
	sender, subject, rcpts          []string
	rec                             [][]byte
	contentDomain, contentID        []string
	contentTS                       []time.Time
	content                         [][]byte
}

func (l *logRow) add(r *Record, val []byte) {
	l.domain = append(l.domain, pgText(normValue(r.Domain, true)))
	l.id = append(l.id, r.ID)
	l.ts = append(l.ts, idTime(r.ID))
	l.status = append(l.status, int16(r.Status))
	l.verdict = append(l.verdict, int16(r.Verdict))
	l.usr = append(l.usr, pgText(normValue(r.User, true)))
	l.identity = append(l.identity, pgText(normValue(r.Identity, true)))
	l.msgid = append(l.msgid, pgText(normMessageID(r.MessageID)))
	l.trace = append(l.trace, pgText(normValue(r.TraceToken, false)))
	ip := ""
	if r.ClientIP.IsValid() {
		ip = r.ClientIP.Unmap().String()
	}
	l.ip = append(l.ip, ip)
	l.partial = append(l.partial, len(r.Partial) > 0)
	l.sender = append(l.sender, pgText(strings.ToLower(r.Sender)))
	l.subject = append(l.subject, pgText(strings.ToLower(r.Subject)))
	var rc strings.Builder
	for i, x := range r.Recipients {
		if i > 0 {
			rc.WriteByte('\n')
		}
		rc.WriteString(strings.ToLower(x.Address))
	}
	l.rcpts = append(l.rcpts, pgText(rc.String()))
	l.rec = append(l.rec, val)
}

// rollupRow is a rollup key taken apart for its table.
type rollupRow struct {
	domain, key      string
	gran, grp, class int16
	bucket           int32
}

// parseRollup splits a key made by rollupKey.
func parseRollup(k string) rollupRow {
	r := rollupRow{gran: int16(k[0]), bucket: int32(binary.BigEndian.Uint32([]byte(k[1:5]))), class: int16(k[5]), grp: int16(k[6])}
	rest := k[7:]
	switch GroupBy(r.grp) {
	case groupTotal:
	case GroupDomain:
		r.domain = rest
	default:
		r.domain, r.key, _ = strings.Cut(rest, "\x00")
	}
	r.domain, r.key = pgText(r.domain), pgText(r.key)
	return r
}

const insertLog = `
INSERT INTO quarantine_log (domain, id, ts, node, status, verdict, usr, identity, msgid, trace, client_ip, partial, sender, subject, rcpts, rec)
SELECT d, i, t, $16, s, v, u, idn, m, tr, NULLIF(ip, '')::inet, p, se, su, rc, rec
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::smallint[], $5::smallint[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::bool[], $12::text[], $13::text[], $14::text[], $15::bytea[])
     AS x(d, i, t, s, v, u, idn, m, tr, ip, p, se, su, rc, rec)
ON CONFLICT DO NOTHING
RETURNING id`

const insertContent = `
INSERT INTO quarantine_content (domain, id, ts, content)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bytea[])`

// granWeek is the granularity of the weekly counters, which only the
// PostgreSQL backend keeps (0102_quarantine_counts.sql): a week starts on
// Monday 00:00 UTC and its bucket is that day's number.
const granWeek = 'w'

// weekOf returns the day number of the Monday that starts day d's week
// (day 0, 1970-01-01, was a Thursday).
func weekOf(d int64) int64 { return d - (d+3)%7 }

// allGroupCodes are the grp values of quarantine_counts, so that a
// statement on one granularity uses the index (grp, gran, bucket).
var allGroupCodes = func() []int16 {
	var c []int16
	for _, g := range allGroups {
		c = append(c, int16(g))
	}
	return c
}()

// countKey is the key of a row of quarantine_counts.
type countKey struct {
	domain, key string
	grp, gran   int16
	bucket      int32
}

// counts are the counters of a row, one per column of countColumns.
type counts [8]int64

// countColumns are the counter columns of quarantine_counts, indexed by
// classColumn.
var countColumns = [8]string{"n_other", "n_all", "n_accepted", "n_rejected", "n_clean", "n_spam", "n_phishing", "n_virus"}

func classColumn(c Class) int {
	if c == classOther {
		return 0
	}
	return int(c)
}

// addCounts adds the rollup counters of keys (rollupKeys of one record) to
// agg as rows of quarantine_counts: the record's classes in one row per
// grouping and period, and its week beside its day. The per-key groups
// store no ClassAll counter: their n_all is the sum of the status classes.
func addCounts(agg map[countKey]*counts, keys []string) {
	add := func(k countKey, c Class) {
		n := agg[k]
		if n == nil {
			n = new(counts)
			agg[k] = n
		}
		n[classColumn(c)]++
		if perKey(GroupBy(k.grp)) && (c == ClassAccepted || c == ClassRejected || c == classOther) {
			n[classColumn(ClassAll)]++
		}
	}
	for _, k := range keys {
		r := parseRollup(k)
		ck := countKey{domain: r.domain, key: r.key, grp: r.grp, gran: r.gran, bucket: r.bucket}
		add(ck, Class(r.class))
		if r.gran == granDay {
			ck.gran, ck.bucket = granWeek, int32(weekOf(int64(r.bucket)))
			add(ck, Class(r.class))
		}
	}
}

// countRows holds rows of quarantine_counts one slice per column, sorted
// by key, so that concurrent rounds of several nodes lock the counters
// they share in the same order.
type countRows struct {
	domain, key []string
	grp, gran   []int16
	bucket      []int32
	n           [8][]int64
}

func sortedCounts(agg map[countKey]*counts) *countRows {
	keys := make([]countKey, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(strings.Compare(a.domain, b.domain), cmp.Compare(a.grp, b.grp), cmp.Compare(a.gran, b.gran),
			cmp.Compare(a.bucket, b.bucket), strings.Compare(a.key, b.key))
	})
	var r countRows
	for _, k := range keys {
		r.domain = append(r.domain, k.domain)
		r.grp = append(r.grp, k.grp)
		r.gran = append(r.gran, k.gran)
		r.bucket = append(r.bucket, k.bucket)
		r.key = append(r.key, k.key)
		for i, n := range agg[k] {
			r.n[i] = append(r.n[i], n)
		}
	}
	return &r
}

// args returns the parameters of upsertCounts.
func (r *countRows) args() []any {
	a := []any{r.domain, r.grp, r.gran, r.bucket, r.key}
	for _, n := range r.n {
		a = append(a, n)
	}
	return a
}

// upsertCounts adds rows to quarantine_counts, one statement per round.
var upsertCounts = func() string {
	cols := strings.Join(countColumns[:], ", ")
	var params, sets []string
	for i, c := range countColumns {
		params = append(params, fmt.Sprintf("$%d::bigint[]", i+6))
		sets = append(sets, fmt.Sprintf("%s = quarantine_counts.%s + excluded.%s", c, c, c))
	}
	return `INSERT INTO quarantine_counts (domain, grp, gran, bucket, key, ` + cols + `)
SELECT * FROM unnest($1::text[], $2::smallint[], $3::smallint[], $4::int[], $5::text[], ` + strings.Join(params, ", ") + `)
ON CONFLICT (domain, grp, gran, bucket, key) DO UPDATE SET ` + strings.Join(sets, ", ")
}()

// errNoPartition is PostgreSQL's check_violation for a row outside every
// partition: a day another node dropped, or one not created yet.
func errNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514"
}

func (b *pgBackend) commit(batch []*op, errs []error, delta *qDelta) error {
	// A round that outlives its deadline is a database out of reach: its
	// records go to the spool (unreachable), instead of every 250 waiting
	// on a connection that stopped answering.
	ctx, cancel := context.WithTimeout(context.Background(), b.roundTimeout)
	defer cancel()
	var days []int64
	for _, o := range batch {
		if o.val != nil {
			days = append(days, dayNumber(idTime(o.id)))
		}
	}
	if err := b.ensureDays(ctx, days); err != nil {
		return err
	}
	err := b.commitTx(ctx, batch, errs, delta)
	if errNoPartition(err) {
		b.forgetDays()
		if err := b.ensureDays(ctx, days); err != nil {
			return err
		}
		err = b.commitTx(ctx, batch, errs, delta)
	}
	return err
}

func (b *pgBackend) commitTx(ctx context.Context, batch []*op, errs []error, delta *qDelta) error {
	*delta = qDelta{}
	clear(errs)
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var rows logRow
	first := make(map[string]int, len(batch)) // id -> index of its op
	for i, o := range batch {
		if !o.take() {
			errs[i] = errAbandoned
			continue
		}
		switch {
		case o.probe:
			// Assigning a transaction id needs a writable primary.
			if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
				return err
			}
		case o.val != nil:
			if _, dup := first[o.id]; dup {
				errs[i] = fmt.Errorf("%w: %s: id already in the log", ErrBadRecord, o.id)
				continue
			}
			first[o.id] = i
			rows.add(o.rec, o.val)
		}
	}
	if len(rows.id) > 0 {
		if err := b.insertRecords(ctx, tx, batch, errs, first, &rows, delta); err != nil {
			return err
		}
	}
	for i, o := range batch {
		if o.update == nil || errs[i] != nil {
			continue
		}
		opErr, err := b.applyUpdate(ctx, tx, o, delta)
		if err != nil {
			return err
		}
		errs[i] = opErr
	}
	return tx.Commit(ctx)
}

func (b *pgBackend) insertRecords(ctx context.Context, tx pgx.Tx, batch []*op, errs []error, first map[string]int, rows *logRow, delta *qDelta) error {
	res, err := tx.Query(ctx, insertLog, rows.domain, rows.id, rows.ts, rows.status, rows.verdict, rows.usr, rows.identity,
		rows.msgid, rows.trace, rows.ip, rows.partial, rows.sender, rows.subject, rows.rcpts, rows.rec, b.s.opts.Node)
	if err != nil {
		return err
	}
	inserted, err := pgx.CollectRows(res, pgx.RowTo[string])
	if err != nil {
		return err
	}
	written := make(map[string]bool, len(inserted))
	for _, id := range inserted {
		written[id] = true
	}
	agg := make(map[countKey]*counts)
	var alsos []*op
	for id, i := range first {
		o := batch[i]
		if !written[id] {
			errs[i] = fmt.Errorf("%w: %s: id already in the log", ErrBadRecord, id)
			continue
		}
		if o.content != nil {
			rows.contentDomain = append(rows.contentDomain, pgText(normValue(o.rec.Domain, true)))
			rows.contentID = append(rows.contentID, id)
			rows.contentTS = append(rows.contentTS, idTime(id))
			rows.content = append(rows.content, o.content)
			delta.msgs++
			delta.bytes += int64(len(o.content))
		}
		addCounts(agg, o.rollups)
		if o.also.PG != nil {
			alsos = append(alsos, o)
		}
	}
	if len(rows.content) > 0 {
		if _, err := tx.Exec(ctx, insertContent, rows.contentDomain, rows.contentID, rows.contentTS, rows.content); err != nil {
			return err
		}
	}
	if len(agg) > 0 {
		if _, err := tx.Exec(ctx, upsertCounts, sortedCounts(agg).args()...); err != nil {
			return err
		}
	}
	// The caller's work last, in the order of the batch.
	slices.SortFunc(alsos, func(a, b *op) int { return cmp.Compare(first[a.id], first[b.id]) })
	for _, o := range alsos {
		if err := o.also.PG(ctx, tx); err != nil {
			return errAlso{err}
		}
	}
	return nil
}

// applyUpdate runs o.update on its record under a row lock, so that
// nodes changing one record take turns. opErr fails this op only.
func (b *pgBackend) applyUpdate(ctx context.Context, tx pgx.Tx, o *op, delta *qDelta) (opErr, err error) {
	ts := idTime(o.id)
	var val []byte
	var expired bool
	err = tx.QueryRow(ctx, `SELECT rec, q_expired FROM quarantine_log WHERE id = $1 AND ts = $2 FOR UPDATE`, o.id, ts).Scan(&val, &expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %s", ErrNotFound, o.id), nil
	}
	if err != nil {
		return nil, err
	}
	r, err := decodePG(o.id, val, expired)
	if err != nil {
		return err, nil
	}
	if err := o.update(r); err != nil {
		return err, nil
	}
	if o.dropContent {
		var n int64
		err := tx.QueryRow(ctx, `DELETE FROM quarantine_content WHERE id = $1 AND ts = $2 RETURNING length(content)`, o.id, ts).Scan(&n)
		switch {
		case err == nil:
			delta.msgs--
			delta.bytes -= n
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
	}
	// The status column follows the record (a release makes it
	// StatusReleased), so that searches by status find it where bbolt's
	// index does.
	_, err = tx.Exec(ctx, `UPDATE quarantine_log SET rec = $3, status = $4 WHERE id = $1 AND ts = $2`, o.id, ts, encodeRecord(make([]byte, 0, len(val)+16), r), int16(r.Status))
	return nil, err
}

// decodePG decodes a stored record and applies the columns kept beside it.
func decodePG(id string, val []byte, expired bool) (*Record, error) {
	r, err := decodeRecord(id, val)
	if err != nil {
		return nil, err
	}
	if expired && r.Quarantine != nil {
		r.Quarantine.Expired = true
	}
	return r, nil
}

func (b *pgBackend) get(id string) (*Record, error) {
	var val []byte
	var expired bool
	err := b.pool.QueryRow(context.Background(), `SELECT rec, q_expired FROM quarantine_log WHERE id = $1 AND ts = $2`, id, idTime(id)).Scan(&val, &expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return decodePG(id, val, expired)
}

func (b *pgBackend) load(id string) (*Record, []byte, error) {
	r, err := b.get(id)
	if err != nil {
		return nil, nil, err
	}
	var content []byte
	err = b.pool.QueryRow(context.Background(), `SELECT content FROM quarantine_content WHERE id = $1 AND ts = $2`, id, idTime(id)).Scan(&content)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("quarantine: %w", err)
	}
	return r, content, nil
}

func (b *pgBackend) newest(kind byte, value string, match func(*Record) bool) (*Record, error) {
	col := map[byte]string{idxMessageID: "msgid", idxTrace: "trace"}[kind]
	if col == "" {
		return nil, fmt.Errorf("quarantine: no lookup by index %q", kind)
	}
	rows, err := b.pool.Query(context.Background(),
		`SELECT id, rec, q_expired FROM quarantine_log WHERE `+col+` = $1 ORDER BY id DESC LIMIT 100`, pgText(value))
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var val []byte
		var expired bool
		if err := rows.Scan(&id, &val, &expired); err != nil {
			return nil, fmt.Errorf("quarantine: %w", err)
		}
		if r, err := decodePG(id, val, expired); err == nil && match(r) {
			return r, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	return nil, fmt.Errorf("%w: %q", ErrNotFound, value)
}

// sqlWhere builds the WHERE clause of a search: every filter of q that
// SQL can apply, as a superset of what matcher accepts (matcher still
// checks every row).
type sqlWhere struct {
	conds []string
	args  []any
}

func (w *sqlWhere) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(w.args))))
}

// contains adds a "contains" filter when the needle survives pgText
// unchanged (else the SQL filter could drop a match; matcher decides),
// as a LIKE of the escaped needle, which the trigram indexes of
// 0104_quarantine_trgm.sql can answer. It reports whether they can: the
// needle has three ASCII letters or digits in a row (pg_trgm makes
// trigrams of the letters and digits of words, whatever the database's
// locale; a needle without one would make the index read all of itself).
// keys are the parts of the needle the index is asked for (lookupKeys):
// when they are not the whole needle, the LIKEs are of the keys, and
// strpos checks the needle on the rows found.
func (w *sqlWhere) contains(col, needle string, keys []string) (indexed bool) {
	if needle == "" || pgText(needle) != needle {
		return false
	}
	if !trigramNeedle(needle) || len(keys) == 0 || len(keys) == 1 && keys[0] == needle {
		w.add(col+" LIKE $?", "%"+likeEscape(needle)+"%")
		return trigramNeedle(needle)
	}
	for _, k := range keys {
		w.add(col+" LIKE $?", "%"+likeEscape(k)+"%")
	}
	w.add("strpos("+col+", $?) > 0", needle)
	return true
}

// likeEscape escapes the wildcards of LIKE (and its escape character,
// the backslash) in s, so that the pattern matches s itself.
func likeEscape(s string) string {
	if !strings.ContainsAny(s, `%_\`) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if c == '%' || c == '_' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// trigramNeedle reports whether s holds three ASCII letters or digits in
// a row.
func trigramNeedle(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			if run++; run == 3 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

func (b *pgBackend) search(q *Query, domain, lo, hi string, m *matcher, limit int) (Page, error) {
	var w sqlWhere
	if lo != "" {
		w.add("id >= $?", lo)
		w.add("ts >= $?", idTime(lo))
	}
	if hi != "" {
		w.add("id < $?", hi)
		w.add("ts <= $?", idTime(hi))
	}
	if domain != "" {
		w.add("domain = $?", pgText(normValue(domain, true)))
	}
	if q.User != "" {
		w.add("usr = $?", pgText(normValue(q.User, true)))
	}
	if q.Identity != "" {
		w.add("identity = $?", pgText(normValue(q.Identity, true)))
	}
	if q.MessageID != "" {
		w.add("msgid = $?", pgText(normMessageID(q.MessageID)))
	}
	if q.TraceToken != "" {
		w.add("trace = $?", pgText(normValue(q.TraceToken, false)))
	}
	if q.ClientIP.IsValid() {
		w.add("client_ip = $?::inet", q.ClientIP.Unmap().String())
	}
	if len(q.Statuses) > 0 {
		st := make([]int16, len(q.Statuses))
		for i, x := range q.Statuses {
			st[i] = int16(x)
		}
		w.add("status = ANY($?::smallint[])", st)
	}
	if len(q.Verdicts) > 0 {
		vs := make([]int16, len(q.Verdicts))
		for i, x := range q.Verdicts {
			vs[i] = int16(x)
		}
		w.add("verdict = ANY($?::smallint[])", vs)
	}
	if q.Partial {
		w.conds = append(w.conds, "partial")
	}
	// A "contains" filter whose needle a trigram index can answer is
	// one more condition of the query: the server finds the matches
	// through the index, the whole log in one call. Otherwise the
	// "contains" filters are checked by the server on a window of at
	// most MaxScan rows of the exact filters, newest first, as bbolt's
	// search examines at most MaxScan entries: the last row of a full
	// window comes back (rn = window) to continue from.
	var hit sqlWhere
	hit.args = w.args
	key := func(col, needle string) []string {
		if !trigramNeedle(needle) {
			return nil
		}
		return lookupKeys(needle, b.sample(context.Background(), col))
	}
	indexed := hit.contains("sender", m.sender, key("sender", m.sender))
	indexed = hit.contains("subject", m.subject, key("subject", m.subject)) || indexed
	indexed = hit.contains("rcpts", m.rcpt, key("rcpts", m.rcpt)) || indexed
	args := hit.args
	window := b.s.opts.MaxScan
	var sql string
	requested := 0 // the rows the query returns at most
	switch {
	case indexed:
		// Planned with the needles' values (an unnamed statement), so
		// that the server weighs the index against reading the log in
		// id order, which is quicker for a needle found in most rows.
		window = 0
		requested = limit + 1
		conds := append(slices.Clone(w.conds), hit.conds...)
		args = append(args, requested)
		sql = fmt.Sprintf(`SELECT id, rec, q_expired, true, 0 FROM quarantine_log WHERE %s ORDER BY id DESC LIMIT $%d`,
			strings.Join(conds, " AND "), len(args))
		args = append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	case len(hit.conds) == 0:
		// Only exact filters: the rows are the matches, read up to one
		// past the page (or the window, if smaller), so that the server
		// merges the day partitions' index scans and stops early.
		requested = min(limit+1, window)
		args = append(args, requested)
		sql = fmt.Sprintf(`SELECT id, rec, q_expired, true, row_number() OVER (ORDER BY id DESC) FROM (
			SELECT id, rec, q_expired FROM quarantine_log %s ORDER BY id DESC LIMIT $%d) w
			ORDER BY id DESC`, whereClause(w.conds), len(args))
	default:
		requested = limit + 2
		args = append(args, window, requested)
		sql = fmt.Sprintf(`SELECT id, rec, q_expired, hit, rn FROM (
			SELECT id, rec, q_expired, (%s) AS hit, row_number() OVER (ORDER BY id DESC) AS rn
			FROM quarantine_log %s ORDER BY id DESC LIMIT $%d) w
		WHERE hit OR rn = $%d ORDER BY id DESC LIMIT $%d`, strings.Join(hit.conds, " AND "), whereClause(w.conds), len(args)-1, len(args)-1, len(args))
	}
	rows, err := b.pool.Query(context.Background(), sql, args...)
	if err != nil {
		return Page{}, fmt.Errorf("quarantine: search: %w", err)
	}
	defer rows.Close()
	var page Page
	n, last := 0, ""
	for rows.Next() {
		var id string
		var val []byte
		var expired, isHit bool
		var rn int64
		if err := rows.Scan(&id, &val, &expired, &isHit, &rn); err != nil {
			return Page{}, fmt.Errorf("quarantine: search: %w", err)
		}
		n, last = n+1, id
		if isHit {
			r, err := decodePG(id, val, expired)
			if err == nil && m.match(r) {
				if len(page.Records) == limit {
					// One more match exists: there is a next page.
					page.NextCursor = encodeCursor(page.Records[limit-1].ID)
					return page, nil
				}
				page.Records = append(page.Records, r)
			}
		}
		if window > 0 && rn == int64(window) {
			// The window is full: go on below its last row.
			page.Partial = true
			page.NextCursor = encodeCursor(id)
			return page, nil
		}
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("quarantine: search: %w", err)
	}
	if n == requested {
		// Rows the server matched and matcher did not filled the answer:
		// there may be more below.
		page.NextCursor = encodeCursor(last)
	}
	return page, nil
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return "WHERE " + strings.Join(conds, " AND ")
}

// weeks replaces the runs of seven day spans that make a whole week
// with that week's span, where the week's counters are complete: its
// Monday is not before the first day whose counters retention keeps (the
// days before it may be swept already, as on bbolt).
func (b *pgBackend) weeks(spans []rollupSpan) []rollupSpan {
	days := make(map[int64]bool)
	for _, sp := range spans {
		if sp.gran == granDay {
			days[int64(sp.bucket)] = true
		}
	}
	kept := b.s.opts.Now().Add(-b.s.opts.LogRetention).Unix() / 86400
	out := make([]rollupSpan, 0, len(spans))
	for _, sp := range spans {
		d := int64(sp.bucket)
		if sp.gran != granDay {
			out = append(out, sp)
			continue
		}
		w := weekOf(d)
		whole := w >= kept
		for i := w; i < w+7 && whole; i++ {
			whole = days[i]
		}
		switch {
		case !whole:
			out = append(out, sp)
		case d == w:
			out = append(out, rollupSpan{granWeek, uint32(w)})
		}
	}
	return out
}

// countSum returns the SQL sum of the counter columns of classes: n_all
// for the three status classes, which it holds for every grouping.
func countSum(classes []Class) string {
	if len(classes) == 3 && slices.Contains(classes, ClassAccepted) && slices.Contains(classes, ClassRejected) && slices.Contains(classes, classOther) {
		return countColumns[classColumn(ClassAll)]
	}
	cols := make([]string, len(classes))
	for i, c := range classes {
		cols[i] = countColumns[classColumn(c)]
	}
	return strings.Join(cols, " + ")
}

func (b *pgBackend) sumRollups(spans []rollupSpan, classes []Class, g GroupBy, scope string) (map[string]int64, error) {
	spans = b.weeks(spans)
	grans := make([]int16, len(spans))
	buckets := make([]int32, len(spans))
	for i, sp := range spans {
		grans[i], buckets[i] = int16(sp.gran), int32(sp.bucket)
	}
	n := countSum(classes)
	// Rows without the classes are skipped before they are grouped; bbolt
	// has no counter for them.
	cond := n + ` > 0`
	if !slices.ContainsFunc(classes, func(c Class) bool { return c != ClassSpam && c != ClassPhishing && c != ClassVirus }) {
		// Threats only: the partial index quarantine_counts_threats.
		cond = `n_spam + n_phishing + n_virus > 0 AND ` + cond
	}
	sql := `SELECT domain, key, sum(` + n + `)::bigint FROM quarantine_counts
		WHERE grp = $1 AND (gran, bucket) IN (SELECT * FROM unnest($2::smallint[], $3::int[])) AND ` + cond
	args := []any{int16(g), grans, buckets}
	if scope != "" {
		sql += ` AND domain = $4`
		args = append(args, pgText(scope))
	}
	sql += ` GROUP BY domain, key`
	rows, err := b.pool.Query(context.Background(), sql, args...)
	if err != nil {
		return nil, fmt.Errorf("quarantine: report: %w", err)
	}
	defer rows.Close()
	sums := make(map[string]int64)
	for rows.Next() {
		var d, k string
		var n int64
		if err := rows.Scan(&d, &k, &n); err != nil {
			return nil, fmt.Errorf("quarantine: report: %w", err)
		}
		if g == GroupDomain {
			sums[d] += n
		} else {
			sums[d+"\x00"+k] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quarantine: report: %w", err)
	}
	return sums, nil
}

func (b *pgBackend) series(gran byte, unit int64, b0, b1 uint32, group GroupBy, key string) ([]SeriesPoint, error) {
	points := make([]SeriesPoint, b1-b0)
	for i := range points {
		points[i].Start = time.Unix((int64(b0)+int64(i))*unit, 0).UTC()
	}
	rows, err := b.pool.Query(context.Background(), `SELECT bucket, `+strings.Join(countColumns[:], ", ")+` FROM quarantine_counts
		WHERE domain = $1 AND grp = $2 AND gran = $3 AND key = '' AND bucket >= $4 AND bucket < $5`,
		pgText(key), int16(group), int16(gran), int32(b0), int32(b1))
	if err != nil {
		return nil, fmt.Errorf("quarantine: series: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var bk int32
		var n counts
		if err := rows.Scan(&bk, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6], &n[7]); err != nil {
			return nil, fmt.Errorf("quarantine: series: %w", err)
		}
		for c := ClassAll; c < classEnd; c++ {
			points[uint32(bk)-b0].set(c, n[classColumn(c)])
		}
	}
	return points, rows.Err()
}

// lockRelease holds a session advisory lock on id on a connection of its
// own until unlock, so that two nodes releasing one message deliver it
// once: the second finds it released.
func (b *pgBackend) lockRelease(ctx context.Context, id string) (func(), error) {
	c, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("quarantine: release of %s: %w", id, err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, pgLockReleaseClass, id); err != nil {
		// The session may hold the lock if only the answer was lost.
		c.Conn().Close(context.Background())
		c.Release()
		return nil, fmt.Errorf("quarantine: release of %s: %w", id, err)
	}
	return func() {
		if _, err := c.Exec(context.Background(), `SELECT pg_advisory_unlock($1, hashtext($2))`, pgLockReleaseClass, id); err != nil {
			c.Conn().Close(context.Background())
		}
		c.Release()
	}, nil
}

func (b *pgBackend) counters() (msgs, n int64, err error) {
	err = b.pool.QueryRow(context.Background(),
		`SELECT count(*), coalesce(sum(length(content)), 0)::bigint FROM quarantine_content`).Scan(&msgs, &n)
	if err != nil {
		return 0, 0, fmt.Errorf("quarantine: counting quarantined messages: %w", err)
	}
	return msgs, n, nil
}

// partitions lists the day partitions of table, oldest first.
func partitions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = $1`, table)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var days []int64
	for _, n := range names {
		t, err := time.Parse("20060102", strings.TrimPrefix(n, table+"_p"))
		if err != nil {
			continue // not one of ours
		}
		days = append(days, dayNumber(t))
	}
	slices.Sort(days)
	return days, nil
}

// sweep drops the day partitions of the log that end at or before
// now-LogRetention, and those of quarantined content that end at or
// before now-QuarantineRetention (marking their records expired first):
// no row-by-row delete of the log. A record is thus kept until its whole
// UTC day is past retention, up to a day longer than on bbolt. Rollups
// are deleted by period as on bbolt. One node sweeps at a time; the
// others skip the round.
func (b *pgBackend) sweep(now time.Time, res *SweepResult) error {
	ctx := context.Background()
	s := b.s
	logCut := dayNumber(now.Add(-s.opts.LogRetention))
	qCut := dayNumber(now.Add(-s.opts.QuarantineRetention))
	today := dayNumber(now)
	// Days ahead, so that a record never waits for its partition.
	if err := b.ensureDays(ctx, []int64{today, today + 1, today + 2}); err != nil {
		return err
	}
	dropped := false
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, pgLockClass, pgLockSweep).Scan(&got); err != nil {
			return err
		}
		if !got {
			return nil
		}
		contentDays, err := partitions(ctx, tx, "quarantine_content")
		if err != nil {
			return err
		}
		for _, d := range contentDays {
			// A day's partition holds [d, d+1): it is wholly before the
			// cut when d+1 <= the cut's day.
			if d+1 > qCut {
				break
			}
			part := partitionName("quarantine_content", d)
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+part).Scan(&n); err != nil {
				return err
			}
			if d+1 > logCut {
				// The log of that day stays: mark its quarantined records.
				if _, err := tx.Exec(ctx, `UPDATE quarantine_log l SET q_expired = true FROM `+part+` c
					WHERE l.domain = c.domain AND l.id = c.id AND l.ts = c.ts`); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+part); err != nil {
				return err
			}
			res.Contents += int(n)
			dropped = true
		}
		logDays, err := partitions(ctx, tx, "quarantine_log")
		if err != nil {
			return err
		}
		for _, d := range logDays {
			if d+1 > logCut {
				break
			}
			part := partitionName("quarantine_log", d)
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+part).Scan(&n); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+part); err != nil {
				return err
			}
			res.Records += int(n)
			dropped = true
		}
		hourLimit := int32(now.Add(-s.opts.LogRetention).Unix() / 3600)
		dayLimit := int32(now.Add(-s.opts.LogRetention).Unix() / 86400)
		keyHourLimit := int32(now.Add(-s.opts.HourlyRetention).Unix() / 3600)
		// A week goes with its Monday (weeks reads it only while its
		// Monday is kept).
		for _, g := range []struct {
			gran  byte
			limit int32
		}{{granHour, hourLimit}, {granKeyHour, keyHourLimit}, {granDay, dayLimit}, {granWeek, dayLimit}} {
			tag, err := tx.Exec(ctx, `DELETE FROM quarantine_counts WHERE grp = ANY($3::smallint[]) AND gran = $1 AND bucket < $2`, int16(g.gran), g.limit, allGroupCodes)
			if err != nil {
				return err
			}
			res.Rollups += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine: sweep: %w", err)
	}
	if dropped {
		b.forgetDays()
	}
	// Other nodes change the quarantine too: take the fleet's count.
	msgs, n, err := b.counters()
	if err != nil {
		return err
	}
	s.qMessages.Store(msgs)
	s.qBytes.Store(n)
	s.m.qMessages.Set(float64(msgs))
	s.m.qBytes.Set(float64(n))
	return nil
}
