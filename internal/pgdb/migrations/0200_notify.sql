-- internal/notify: the notification outbox the nodes of a fleet share
-- (docs/config-notify.md, "Several nodes"). Every node delivers from it:
-- a node claims one due item at a time with SELECT ... FOR UPDATE SKIP
-- LOCKED and leases it (lease_node, lease_token, lease_until) for one
-- delivery attempt; a lease whose node died ends at lease_until and the
-- item is taken by another node. Times are the nodes' clocks.
CREATE TABLE notify_outbox (
	id           bigserial PRIMARY KEY,
	channel      text NOT NULL,
	-- The item as the bbolt backend stores it (event, recipient,
	-- attempts, last error).
	item         jsonb NOT NULL,
	created      timestamptz NOT NULL,
	next_attempt timestamptz NOT NULL,
	-- The node that added it.
	node         text NOT NULL,
	lease_node   text,
	lease_token  text,
	lease_until  timestamptz
);
CREATE INDEX notify_outbox_created ON notify_outbox (created);
