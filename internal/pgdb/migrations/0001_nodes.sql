-- The nodes of the fleet: each node records itself at start and while it
-- runs (docs/config-store.md, "Several nodes").
CREATE TABLE outguard_nodes (
	node_name  text PRIMARY KEY,
	version    text NOT NULL,
	started_at timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL
);
