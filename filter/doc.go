// Package filter classifies outgoing messages as clean, spam, phishing or
// virus.
//
// # Overview
//
// A message is parsed once with ParseMessage (headers, the MIME tree with
// transfer encodings and charsets decoded, text extracted from HTML, URLs,
// attachment names and the entries of zip archives), the caller fills in
// the SMTP envelope, and Classifier.Classify hands the Message to every
// configured Engine at once. Each engine returns a Verdict; the most severe
// class wins (virus > phishing > spam > clean) and the reasons of all
// engines are kept, each written as "engine:RULE(score)".
//
// Three engines ship with the package:
//
//   - Builtin needs no other service: GTUBE, EICAR (also inside zip
//     archives), operator rules on headers, body text and URLs, phishing
//     heuristics, dangerous attachments and outbound signals.
//   - Rspamd posts the raw message to rspamd's /checkv2 endpoint.
//   - Clamd streams the raw message to ClamAV's clamd with INSTREAM.
//
// Every engine runs under its own timeout. When one fails (refused
// connection, timeout, bad answer) its OnError setting decides: OnErrorTempfail
// makes Classify return an error wrapping ErrTempfail, which the SMTP layer
// turns into a temporary failure, and OnErrorAccept logs a warning, counts
// the error and lets the other engines decide. A failed engine never passes
// a message silently and never blocks Classify past its timeout.
//
// The call order for one SMTP transaction is:
//
//	m, err := filter.ParseMessage(spool, size, c.Limits()) // spool: an io.ReaderAt
//	m.Envelope = filter.Envelope{MailFrom: ..., Rcpts: ..., ClientIP: ...}
//	v, err := c.Classify(ctx, m)
//	// errors.Is(err, filter.ErrTempfail): answer 451 4.7.1
//	// v.Class > filter.Clean: refuse with 550 5.7.1 and v.Reasons
//
// The spool must stay readable until Classify returns. ClassifyFile does
// the same for a message stored in a file, for the offline
// `outguard classify` command. Engines that talk to a service implement
// Pinger, for readiness checks.
//
// Metrics, registered on Options.Registerer:
// outguard_classification_duration_seconds{engine} (engine="all" for the
// whole classification), outguard_scanner_errors_total{engine} and
// outguard_verdicts_total{verdict} (clean, spam, phishing, virus,
// tempfail) and outguard_unscanned_total{limit} (partially scanned
// messages, per limit reached).
//
// # Caveats
//
// ParseMessage is lenient: spammers send broken MIME on purpose, so a
// malformed part or an exceeded limit is recorded in Message.Defects and
// the walk goes on with what could be read, instead of failing. What a
// limit kept from the engines is never silently clean: it is recorded in
// Message.Gaps (which limit, and whether text, an inert file or an
// executable or archive was left unscanned), Classify carries the gaps
// into Verdict.Gaps, and the caller applies an UnscannablePolicy to a
// clean verdict with gaps (docs/config-filter.md). The limits
// bound the decoded bytes kept in memory; the undecoded message itself is
// read through an io.ReaderAt and is never copied whole.
//
// Scores of different engines are on different scales (rspamd's score is
// not the built-in engine's), so the merged Verdict.Score is the score of
// the engine whose verdict won, not a sum.
package filter
