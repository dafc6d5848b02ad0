-- admin/ops: the audit trail of a fleet (docs/config-store.md, "What is
-- shared today"), one row per administrative action done through any
-- node. The id is the fleet-wide order of the trail (the API's cursor);
-- node names the node that recorded the entry.
CREATE TABLE admin_audit (
	id            bigserial PRIMARY KEY,
	at            timestamptz NOT NULL,
	node          text NOT NULL,
	actor         text NOT NULL,
	scope         text NOT NULL,
	action        text NOT NULL,
	target_kind   text NOT NULL,
	target_domain text NOT NULL DEFAULT '',
	target_name   text NOT NULL DEFAULT '',
	reason        text NOT NULL DEFAULT '',
	detail        text NOT NULL DEFAULT ''
);
-- A domain-scoped listing (a domain's token, or a domain filter) walks
-- its domain's entries newest first, whatever the other domains hold.
CREATE INDEX admin_audit_domain ON admin_audit (lower(target_domain), id DESC);
