-- The behaviour detectors' state (docs/baseline.md, docs/campaigns.md),
-- kept by package app.

-- One baseline profile per identity, keyed by administrative domain first.
-- identity is bytea: it comes from a message's header and need not be
-- valid UTF-8. The last node to write a profile wins.
CREATE TABLE detection_profiles (
	domain     text NOT NULL,
	identity   bytea NOT NULL,
	profile    bytea NOT NULL,
	node       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, identity)
);

-- Each node's campaign store snapshot (campaign.Store.Encode).
CREATE TABLE detection_campaigns (
	node       text PRIMARY KEY,
	state      bytea NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
