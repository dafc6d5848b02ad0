// Package notify tells other systems about locks: a signed JSON webhook
// and, on automatic locks, a short mail to the domain's abuse contact.
//
// # Overview
//
// New opens a Notifier on the node's bbolt database, in the bucket
// notify_outbox, or on the PostgreSQL database a fleet shares, in the
// table notify_outbox, where every node's Notifier delivers and each item
// is leased to one node at a time (docs/config-notify.md, "Several
// nodes"). Notify stores an Event (one outbox item per channel that
// wants it) and returns once it is committed: a crash after Notify
// returned loses nothing. Start runs a goroutine that delivers the items,
// retrying failures with exponential backoff until they are delivered or
// older than Options.MaxAge; an expired item is logged at error level,
// counted in outguard_notify_expired_total and dropped. Stop ends the
// goroutine; items not yet delivered stay in the outbox for the next
// start.
//
// FromIdentity converts an identity.Event (lock, automatic lock, unlock,
// expiry, would-lock) and FromOutboxExpiry an ARF report that expired
// undelivered.
//
// A webhook request is a POST of the event as JSON with the headers
// X-Outguard-Event (the type), X-Outguard-Delivery (the event id, stable
// across retries: receivers deduplicate with it), X-Outguard-Timestamp
// (Unix seconds of this attempt) and X-Outguard-Signature
// "sha256=HEX", the HMAC-SHA256 under the shared secret of the timestamp,
// a dot and the body. Verify checks them; a receiver should refuse a
// timestamp far from its clock, so a captured request cannot be replayed
// later. Any 2xx answer is a delivery; anything else, or no answer within
// Options.Timeout, is retried.
//
// # Caveats
//
// Delivery is at least once: a receiver that answered 2xx after the
// timeout, or a crash between the answer and the outbox update, gets the
// event again with the same id.
//
// Notify writes to the store and so waits for one commit; events are rare (one
// per lock or threshold crossing), so calling it from
// identity.Options.OnEvent is fine.
package notify
