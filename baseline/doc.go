// Package baseline judges each identity's sending against its own history:
// a compact rolling profile per identity, and a verdict on every message
// saying whether the identity's current hour departs sharply from that
// profile. It has no dependency on the rest of outguard; docs/baseline.md
// describes the model, its defaults and its costs.
//
// # Overview
//
// Create one Detector with New and call Detector.Observe for every message
// the identity sends, with the identity's key (for example
// "example.com/alice"), the time, the number of recipients and their
// domains. Observe counts the message in the identity's current hour and
// returns a Verdict: a Level (None, Suspect or Lock), the Signal that
// reached it and the numbers behind it, ready to be written as evidence.
// Verdict.Escalated marks the one message of the hour that first reached
// the level, so a caller counts a suspect or locks once an hour, not once
// per message.
//
// A profile holds, per identity and in fixed space: the counts of the
// current hour (messages, recipients, recipient domains never sent to
// before); exponentially weighted means of those counts over the hours in
// which the identity sent, and of its distinct recipient domains, its
// recipients per message and its share of new domains; a decayed peak of
// each count, which is how a weekly newsletter's burst is remembered as
// its own; and two small Bloom filters of the domains it has sent to.
//
// Past its warm-up (7 days by default), an identity's
// hour reaches Suspect when a count is at least 10 times its usual value,
// 3 times its remembered peak and above an absolute floor; Lock at 20
// times, 5 times the peak and a higher floor. Under warm-up the absolute
// limits of Options.Warmup* apply instead. Every threshold is an Options
// field.
//
// # Persistence
//
// Profile implements encoding.BinaryMarshaler and BinaryUnmarshaler with
// a compact, versioned encoding (about 110 bytes for a typical identity,
// at most 371). To keep profiles across restarts, either
//
//   - call Detector.Snapshot(true, ...) periodically and at shutdown to
//     write the profiles changed since the last snapshot, and
//     Detector.Restore each stored profile at start-up; or
//   - set Options.OnEvict and Options.Fetch, so that memory holds the
//     Options.MaxProfiles most recently active identities and storage all
//     of them, Fetch reading a profile back on the first message of an
//     identity not in memory. Snapshot is still needed for the profiles in
//     memory.
//
// # Concurrency
//
// A Detector is safe for concurrent use. Profiles live in Options.Shards
// shards, each with its own lock, map and recency list; Observe holds one
// shard's lock for a few hundred nanoseconds and does not allocate once the
// identity is known. Snapshot copies one shard at a time and calls its
// function without holding any lock.
//
// # Caveats
//
// Hours are fixed clock hours (UTC), not sliding windows: a burst that
// straddles the top of an hour is judged in two halves, so it is caught at
// about twice its hourly size in the worst case, or in its first full hour
// if it lasts.
//
// Every hour is learned, including one that reached Lock: once a caller
// unlocks an identity, or in monitor mode where nothing is locked, a burst
// of the same size is part of its history. An identity that ramps up
// slowly, never tenfold within an hour, is not a departure; the other
// signals (content, refusals, campaigns) are there for it.
//
// The Bloom filters hold about 120 to 240 recent domains at a few percent
// false positives. An identity that sends to more domains in an hour
// overfills the current generation, and its count of new domains is then
// an undercount; since that identity's peak of new domains is its own, it
// is compared with what it usually undercounts.
//
// MaxProfiles is a bound on the total; eviction picks the least recently
// observed profile of the new key's shard, which is close to, not exactly,
// the least recently observed overall.
//
// Domain names are hashed by a function fixed in this package (not a
// per-process seed), so that stored profiles stay valid across restarts:
// anyone who can choose recipient domains can aim for collisions in one
// identity's filter, which at worst makes new domains look known.
package baseline
