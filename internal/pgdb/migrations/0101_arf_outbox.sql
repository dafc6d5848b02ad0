-- The ARF outbox shared by the fleet (package arf, docs/arf.md): one row
-- per report, pending, sent or expired. A node takes due reports with
-- FOR UPDATE SKIP LOCKED and holds them under a lease (lease_until) while
-- it delivers; a lease that runs out (the node died) frees the report for
-- another node.
CREATE TABLE arf_outbox (
	id           text PRIMARY KEY,
	state        text NOT NULL CHECK (state IN ('pending', 'sent', 'expired')),
	to_addrs     text[] NOT NULL,
	raw          bytea,                    -- dropped once sent
	created      timestamptz NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_attempt timestamptz NOT NULL,
	last_error   text NOT NULL DEFAULT '',
	expired_at   timestamptz,
	sent_at      timestamptz,
	lease_until  timestamptz,
	lease_node   text,
	node         text NOT NULL             -- node_name of the node that queued it
);

CREATE INDEX arf_outbox_due ON arf_outbox (next_attempt) WHERE state = 'pending';
CREATE INDEX arf_outbox_sent ON arf_outbox (sent_at) WHERE state = 'sent';
