// Package campaign finds campaigns: the same content sent by many
// identities, with per-recipient details changed. It fingerprints message
// text with word shingles and MinHash, keeps a bounded store of recent
// fingerprints grouped into campaigns, and raises the campaign signals of
// docs/campaigns.md. It imports no other outguard package.
//
// # Overview
//
// Compute turns what the caller decoded from a message (Input: subject,
// text of the inline parts with HTML as text, the recipients' names and
// local parts, attachment digests) into a Fingerprint. It is pure and
// safe for concurrent use: call it outside any lock, once per message.
//
// New returns a Store. For each message, Observe records its fingerprint
// with the transaction id, identity, user, recipient count and content
// verdict, and returns a Result: the campaign id (joined or started) and
// the signals raised, strongest first:
//
//   - SignalConfirmed (Block): the message is a near-duplicate of a
//     campaign confirmed as spam or phishing. Refuse it permanently with
//     Signal.Reason, which names the campaign.
//   - SignalUsers (Lock): the campaign came from identities of more than
//     Options.UserThreshold distinct users within Options.UserWindow.
//     Evidence lists those users' latest identities and transactions, so
//     the caller can lock every one of them, not only the sender of this
//     message.
//   - SignalRecipients (Report): this identity sent the campaign to more
//     than Options.RecipientThreshold recipients.
//
// Signals are level-triggered: every message raises them while their
// condition holds, and Signal.Crossed marks the one that made it hold.
//
// Confirm and ConfirmMessage mark a campaign as confirmed (by an operator,
// or by a scanner's verdict on one message); Unconfirm withdraws it. List
// and Get serve the API and the console; Get lists the campaign's
// identities for a "lock every identity of this campaign" action. Stats
// gives sizes for metrics. Encode and Decode carry the state across
// restarts (for example in one bbolt value), under the same bounds.
//
// Every Store method takes one mutex. Observe does O(Bands) map operations
// under it, plus a walk of at most Options.MaxEvidence users for a
// campaign past the user threshold; nothing scans the store per message.
// List, Encode and Decode are linear and meant for the API, snapshots and
// start-up.
//
// # Bounds
//
// The store keeps at most Options.MaxEntries recent fingerprints (one per
// observed message), each for at most Options.Window, oldest evicted
// first; a campaign lives while one of its fingerprints does. Confirming a
// campaign copies its latest Exemplars fingerprints into a second bounded
// set (Options.MaxConfirmed, Options.ConfirmedTTL), so that confirmed
// campaigns keep blocking after their traffic has left the window. Each
// campaign tracks at most Options.MaxUsers users and Options.MaxIdentities
// identities (least recently seen forgotten first). Identities, users and
// transaction ids are cut to 512 bytes. Compute reads at most MaxTextBytes
// of text, 64 KiB of per-recipient words and MaxAttachments digests.
//
// # Caveats
//
// Quoted text (lines starting with '>', everything after a reply
// attribution or an original-message separator) is left out of the
// fingerprint when the message's own text suffices; otherwise the
// fingerprint is marked Quoted and its user does not count towards
// SignalUsers, so list members replying to one post are not a campaign of
// users. Forwarded messages are not quoted text.
//
// Messages join the campaign of the most similar earlier fingerprint; two
// campaigns are never merged afterwards, so a template that drifts far
// enough starts a new campaign. Short texts (fewer than MinShingles
// shingles) are fingerprinted only when they hold a link, by an exact hash
// of their normalised words, and a text-less message only by its
// attachments. Templated mail that many unrelated users legitimately send
// through their own accounts (a shop system's order confirmations, a
// form-to-mail plugin) is a campaign by this definition; the user
// threshold and window are the knobs.
package campaign
