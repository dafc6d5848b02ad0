-- identity: locks with their history and evidence, the automatic-lock
-- windows and their fleet-wide counts, and the "would have locked"
-- records (docs/config-store.md, "Several nodes"). Names are stored in
-- lower case, as the identity package compares them. Every table that
-- grows with traffic keeps the administrative domain first in its key.

-- One row per lock target: its latest lock, its history and escalation
-- count, as a JSON document (the record of the bbolt backend). Every
-- change is announced on the channel outguard_identity_locks.
CREATE TABLE identity_locks (
	domain     text NOT NULL,
	kind       text NOT NULL,
	name       text NOT NULL,
	record     jsonb NOT NULL,
	settled    boolean NOT NULL,
	node       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, kind, name)
);
-- Listing in (kind, domain, name) order, and the index resync (locks not
-- yet settled).
CREATE INDEX identity_locks_list ON identity_locks (kind COLLATE "C", domain COLLATE "C", name COLLATE "C");
CREATE INDEX identity_locks_unsettled ON identity_locks (domain) WHERE NOT settled;

-- Each node's window state, written behind (what the bbolt backend keeps
-- in identity_windows), so that a restarted node keeps its evidence.
CREATE TABLE identity_windows (
	domain     text NOT NULL,
	identity   text NOT NULL,
	node       text NOT NULL,
	state      jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, identity, node)
);
CREATE INDEX identity_windows_node ON identity_windows (node);

-- The fleet-wide counts: what each node counted per identity, counter and
-- time slot (Unix nanoseconds of the slot's start). A row goes once its
-- slot has left the counter's window (expires).
CREATE TABLE identity_window_counts (
	domain   text NOT NULL,
	identity text NOT NULL,
	counter  smallint NOT NULL,
	slot     bigint NOT NULL,
	node     text NOT NULL,
	n        bigint NOT NULL,
	expires  bigint NOT NULL,
	PRIMARY KEY (domain, identity, counter, slot, node)
);
CREATE INDEX identity_window_counts_expires ON identity_window_counts (expires);

-- When a counter of an identity last crossed its threshold and started
-- afresh, fleet-wide: slots up to then no longer count.
CREATE TABLE identity_window_resets (
	domain   text NOT NULL,
	identity text NOT NULL,
	counter  smallint NOT NULL,
	reset_at bigint NOT NULL,
	PRIMARY KEY (domain, identity, counter)
);

-- Threshold crossings in monitor mode.
CREATE TABLE identity_wouldlocks (
	domain   text NOT NULL,
	id       bigserial NOT NULL,
	identity text NOT NULL,
	at       timestamptz NOT NULL,
	record   jsonb NOT NULL,
	node     text NOT NULL,
	PRIMARY KEY (domain, id)
);
CREATE INDEX identity_wouldlocks_id ON identity_wouldlocks (id);
