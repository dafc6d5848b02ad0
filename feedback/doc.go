// Package feedback is outguard's intake of third-party feedback: the ARF
// (RFC 5965) complaints that mailbox providers' feedback loops send about
// mail outguard relayed. Reports arrive over SMTP on a feedback listener
// and as uploads through the admin API and the CLI; both end in
// Intake.Ingest or Intake.IngestSMTP.
//
// For each report the intake
//
//   - parses it (arf.Parse); a message that is not a report is refused with
//     an error wrapping ErrNotFeedback;
//   - matches the sender against the allow-listed reporters (arf.reporters
//     and arf.feedback_sources, docs/config-arf.md);
//   - attributes it to a transaction of the message log, or to an identity
//     named in the identity header (arf.Attribute over a MessageLog);
//   - de-duplicates it: the very same report again is ignored, and a
//     reporter's second complaint about the same transaction is stored but
//     not counted;
//   - stores it, raw and with the Result, before anything acts on it;
//   - counts an attributed abuse, fraud or virus complaint of an
//     allow-listed reporter toward automatic locking (LockObserver), marks
//     the message-log record (MessageLog.AddComplaint) and, when enabled,
//     teaches the content model the complained-about original (Learner).
//
// The package owns two bbolt buckets, app_feedback (the reports) and
// app_feedback_index (the de-duplication index); their names predate the
// package and stay for the data already on disk. On the postgres backend
// (Options.Postgres) they are the tables feedback_reports and
// feedback_index a fleet of nodes shares (docs/config-arf.md, "Several
// nodes"). Retention
// (arf.feedback_retention) removes old reports with their index entries.
// Metrics: outguard_feedback_ingested_total,
// outguard_feedback_complaints_total and outguard_feedback_pruned_total
// (docs/config-arf.md).
//
// The intake does not know the SMTP server or the admin API: package app
// builds it with adapters for the message log, the lock manager and the
// content model, and answers the feedback listener's SMTP dialogue itself.
package feedback
