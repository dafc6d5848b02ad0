// Package arf builds and reads abuse reports in the Abuse Reporting Format
// (RFC 5965), delivers outguard's own reports through a durable outbox, and
// attributes third-party complaints to outgoing users and identities.
//
// # Overview
//
// Four pieces, used by the app package:
//
//   - Generator.Generate turns a blocked message (an Incident) into a
//     multipart/report; report-type=feedback-report message: a human-readable
//     part, a 7bit message/feedback-report part, and the original as
//     message/rfc822, or only its header block as text/rfc822-headers when
//     it is larger than GeneratorOptions.MaxOriginalBytes. The original is
//     never re-encoded or truncated. Clock, Message-ID and MIME boundary are
//     injectable so output is reproducible.
//   - Outbox stores reports in its own buckets of the shared bbolt database
//     before Enqueue returns, and a background sender delivers them with
//     MAIL FROM:<> through a SendFunc (SMTPSender is the SMTP one), retrying
//     with exponential backoff until delivered, expired (MaxAge) or refused
//     permanently. Undelivered reports stay listed by Expired.
//   - Parse reads a feedback report from outside, tolerant of the deviations
//     real reporters make (listed in Feedback.Warnings) and of the legacy
//     Microsoft JMRP and AOL formats, and refuses what is not a report or is
//     hostile with a sentinel error whose text is a stable reason code
//     (ErrorCode). NewResult gives the JSON shape the CLI prints.
//   - Attribute finds the transaction a complaint is about through a Lookup:
//     trace token, then Message-ID, then the identity header.
//
// SkipReason, IsFeedbackReport and IsAutoSubmitted keep outguard from
// reporting reports.
//
// # Caveats
//
// Parse holds the whole input in memory, bounded by ParseOptions.MaxBytes
// (10 MiB by default); MIME parts are slices of it, and decoding a base64
// or quoted-printable part copies that part, once per nesting level of
// forwarded reports (bounded by ParseOptions.MaxDepth), so peak memory is a
// small multiple of MaxBytes and time is linear in it.
//
// Delivery is at least once toward the relay: a crash after the relay
// accepted a report but before the outbox recorded it sends the report
// again after restart. Once recorded, a report is never sent again, and
// enqueueing the same ID again is a no-op for MaxAge.
//
// The identity header of a complained-about message is only as trustworthy
// as the path the copy took; Attribute says which method it used so callers
// can weigh it. Anyone can write a report: only a trace token or
// Message-ID found in the message log ties it to mail outguard relayed,
// and then the identity is the log's, not the report's.
//
// The original's header is read leniently where the report's own parts are
// not: an over-long field of the original is skipped (warning
// WarnOversizedFieldSkipped) so that a sender cannot pad his mail until
// complaints about it fail to parse. The identity header is read with
// ParseOptions.IdentityOccurrence, the occurrence the identity rules use:
// under OccurrenceOnly two different values yield no identity
// (WarnIdentityAmbiguous).
package arf
