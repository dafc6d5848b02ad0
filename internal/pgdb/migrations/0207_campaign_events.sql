-- Campaign confirmations and withdrawals shared by the fleet
-- (docs/campaigns.md, "Several nodes"), kept by package app. Campaign ids
-- are each node's own: an event carries the campaign's exemplar
-- fingerprints (campaign.Fingerprint encodings). Events are kept as long
-- as a confirmed fingerprint blocks (30 days).
CREATE TABLE detection_campaign_events (
	seq          bigserial PRIMARY KEY,
	at           timestamptz NOT NULL DEFAULT clock_timestamp(),
	node         text NOT NULL,
	action       text NOT NULL CHECK (action IN ('confirm', 'unconfirm')),
	actor        text NOT NULL,
	fingerprints bytea[] NOT NULL
);

CREATE INDEX detection_campaign_events_at ON detection_campaign_events (at);
