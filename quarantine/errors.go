package quarantine

import "errors"

// Sentinel errors. Errors returned by the Store wrap one of these (or a
// bbolt error) and can be tested with errors.Is.
var (
	// ErrNotFound: no record, or no record the caller's scope may see.
	ErrNotFound = errors.New("quarantine: record not found")
	// ErrNotQuarantined: the record exists but its content was never
	// quarantined (the transaction was not blocked for its content).
	ErrNotQuarantined = errors.New("quarantine: message was not quarantined")
	// ErrGone: the quarantined content was deleted or expired.
	ErrGone = errors.New("quarantine: quarantined content no longer stored")
	// ErrClosed: the Store was stopped.
	ErrClosed = errors.New("quarantine: store stopped")
	// ErrBadID: a string is not an id made by NewID.
	ErrBadID = errors.New("quarantine: malformed id")
	// ErrBadRecord: a record given to Append or Quarantine is unusable.
	ErrBadRecord = errors.New("quarantine: invalid record")
	// ErrBadQuery: a query, report request or cursor is invalid.
	ErrBadQuery = errors.New("quarantine: invalid query")
	// ErrNoDeliver: Release was called on a Store without Options.Deliver.
	ErrNoDeliver = errors.New("quarantine: no delivery function configured")
	// ErrDeliver wraps the error of a failed release delivery.
	ErrDeliver = errors.New("quarantine: release delivery failed")
	// ErrUnwritable: the last write to the database failed (a full disk,
	// an I/O error) and none has succeeded since; see Store.Writable.
	ErrUnwritable = errors.New("quarantine: message log cannot be written")
)

// errAbandoned is what the committer reports for an op whose waiter gave
// up before the op was written; nobody reads it.
var errAbandoned = errors.New("quarantine: write abandoned by its caller")
