// Package quarantine is outguard's message log and quarantine, stored in
// bbolt (New) or, for a fleet of nodes, in PostgreSQL (NewPostgres): one
// record per SMTP transaction that reached DATA, the raw content of
// blocked messages, search over the log, and reports served from rollups.
// Both backends sit under the same Store (the backend interface); what
// follows holds for both, and "PostgreSQL" below says where they differ.
//
// # Overview
//
// New takes a *bbolt.DB opened by the caller and creates the buckets the
// package owns (all named "quarantine.*"). It starts a group committer: a
// single goroutine that takes everything queued and writes it in one
// transaction, so one fsync covers every record and quarantined message
// that arrived while the previous round was being written.
//
//   - Append queues a record and returns at once (it blocks only while the
//     queue of Options.QueueSize records is full: backpressure, never
//     loss). Use it for transactions whose reply does not depend on the
//     log.
//   - AppendCoalesced queues a record and returns once it is on disk. A
//     lone writer's record commits at once; while several write, a round
//     waits a little for company (twice as long as recent commits took,
//     capped by Options.CoalesceDelay), so the relay's 250 waits for its
//     record without costing an fsync per message.
//   - Quarantine writes a record with the compressed raw message and
//     returns once both are on disk: answer 550 after it returns.
//     QuarantineWith adds the caller's own writes (the ARF report) to the
//     same transaction. An error from a synced write means nothing of it
//     was written, also when the caller's context ended first.
//   - Writable reports whether the database can be written: from a failed
//     commit until a later one succeeds (a probe is written every
//     Options.ProbeInterval meanwhile) it returns ErrUnwritable, and the
//     relay refuses mail that would need a record.
//   - PostgreSQL: with Options.Spool, a round that cannot reach the
//     database writes its log records to a spool in the node's bbolt file
//     instead (before its waiters return), and so do the rounds after it
//     until the database answers; a quarantined message or an update fails
//     with ErrDegraded meanwhile, and Search too. A goroutine ships the
//     spool when the database is back, idempotently by id. State says
//     which of ok, shipping, spooling and unwritable the store is in;
//     Writable fails only once the spool is full (ErrSpoolFull). See
//     spool.go and docs/config-store.md.
//   - Search, Get, ByMessageID and ByTraceToken read the log through
//     secondary indexes; Report and Series read rollup counters kept up to
//     date in the same transaction as the records.
//   - Show, Raw, Release and Delete act on quarantined messages; Release
//     delivers through Options.Deliver at most once per message.
//   - Sweep applies retention; Start runs it periodically; Stop flushes the
//     queue and stops both goroutines. The caller closes the database
//     after Stop.
//
// Domain-scoped admin tokens: Query, ReportQuery and SeriesQuery have a
// Scope, and the quarantine operations take an Actor with a Domain; a
// record outside it is reported as ErrNotFound. Get, ByMessageID and
// ByTraceToken serve ARF attribution and are not scoped: check
// Record.InDomain before showing their result to a scoped admin.
//
// Ids are made by the caller with NewID (ULID layout: time-ordered,
// 26 characters of Crockford base32). The time in the id is the one that
// searches, reports and retention use.
//
// # Layout
//
// Ids are stored in keys in their 16-byte binary form, which sorts like
// the text form. quarantine.log maps id to the record in a compact binary
// encoding. quarantine.idx holds keys kind|hash64(value)|id (user, domain,
// identity, status, verdict, Message-ID, trace token, client IP) whose
// values carry
// the record's status, verdict and a hash of its domain, so filters on
// those need not load the record. quarantine.msg maps id to the deflated
// message. quarantine.rollup holds counters keyed
// granularity|bucket|class|group|domain NUL key for hours and UTC days:
// totals and per-domain counters for every class, per identity, user and
// sender counters by status class (accepted, rejected, other) and threat
// verdict, "all" being the sum of the status classes.
//
// # PostgreSQL
//
// NewPostgres takes a pool on a database migrated by internal/pgdb
// (0100_quarantine.sql). The committer is the same: a round is one
// transaction with one multi-row INSERT of its records (unnest of
// arrays), the content of quarantined messages, the rollup upserts (in
// key order, so that nodes lock shared counters in one order) and the
// callers' Also.PG work. Updates (complaints, release, deletion) lock
// their row. The log and the content are partitioned by UTC day of the
// id's time; the store creates the partitions it writes to, and Sweep
// (one node at a time, under an advisory lock) drops the days wholly past
// retention, so records live up to a day longer than on bbolt. Every
// table has the administrative domain first in its key. A search sends
// its exact filters and its "contains" filters to the server, and checks
// every row it gets as on bbolt: a "contains" filter with three ASCII
// letters or digits in a row is a LIKE that the trigram indexes of
// 0104_quarantine_trgm.sql answer over the whole log; without one, the
// "contains" filters are evaluated over a window of MaxScan rows, as
// bbolt examines at most MaxScan entries. Records name their node
// (Options.Node).
//
// # Caveats
//
// Records written with Append are lost if the process dies before their
// round commits (at most the queue's content): the reply to those clients
// did not depend on them. A release whose delivery succeeded but whose
// recording was interrupted by a crash is delivered again by a later
// Release. Reports round their period out to whole hours, and to whole
// UTC days at an edge older than Options.HourlyRetention (72 hours) when
// grouping by identity, user or sender. Index and rollup values are
// capped at 200 bytes; searches compare the record itself in full.
// Search examines at most Options.MaxScan entries per call and then
// returns a partial page with a cursor, so a "contains" filter over a
// large log costs several calls rather than one unbounded one (on
// PostgreSQL, only when no trigram index applies).
package quarantine
