// Package identity finds the end user behind an outgoing message, keeps the
// locks on outgoing users and identities, and locks identities automatically
// when they cross a threshold within a sliding window.
//
// # Overview
//
// Extraction is pure: compile an outgoing user's ordered rules once with
// NewRules, then call Rules.Extract for every message with the raw header
// block, the SMTP AUTH name and the envelope sender. The first rule that
// yields a valid value wins. A header rule reads the occurrence its
// Occurrence names: the topmost for an MTA that prepends its header, the
// bottommost for one that appends it, or, by default, the value only if
// every occurrence agrees; so a copy an end user writes on the other side
// of the MTA's cannot change the identity (docs/identity-recipes.md).
// TraceToken makes the opaque value of the trace header.
//
// A Manager keeps its records in a store: three buckets (prefixed
// "identity_") on a *bbolt.DB that the caller opens and closes (Open), or
// the identity_* tables of a PostgreSQL database a fleet of nodes shares
// (OpenPostgres; docs/config-store.md, "Several nodes"). It loads the
// locks that are in force into an in-memory index, so Manager.CheckUser
// and Manager.CheckIdentity, called at MAIL and after DATA, never read the
// database; on PostgreSQL the index follows the other nodes' changes by
// LISTEN/NOTIFY, with a periodic full reload. Lock, Unlock, Get, List and
// History are the administrative surface; every change is written through
// to the store before it returns.
//
// Manager.Observe counts each message (and each attributed complaint) of an
// identity in sliding windows, one per counter (spam, phishing, virus,
// complaints, messages, recipients), and locks the identity the first time a
// counter reaches its threshold. Window state is kept in memory, sharded by
// identity key, and written behind to the store periodically and on Close.
// In monitor mode a crossing records a WouldLock instead of a lock. On
// PostgreSQL each node also sends its increments in rounds and reads back
// the other nodes' counts, and locks when the fleet's total crosses.
//
// Identity and domain names are compared without regard to case: locks and
// windows are keyed by kind, lower-cased domain and lower-cased name.
//
// # Caveats
//
// Window counts reach bbolt only at each flush (Options.FlushInterval) and
// on Close: a crash loses at most that much counting, never a lock.
//
// Locks are written synchronously, one bbolt transaction each; they are
// rare compared with messages.
//
// A counter whose threshold is 0 is off and is not counted at all, so
// Usage shows 0 for it; turning it on starts counting from then.
//
// When a counter crosses its threshold it starts afresh (the other counters
// keep counting), so a monitored identity records one WouldLock per
// crossing rather than one per message after it.
package identity
