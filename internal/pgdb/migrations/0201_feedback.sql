-- feedback: the third-party feedback reports the nodes of a fleet received
-- and their de-duplication index (docs/config-arf.md, "Several nodes"),
-- shared so that a report received by one node is a duplicate on the
-- others. Ids sort by arrival (they begin with the time).
CREATE TABLE feedback_reports (
	id       text COLLATE "C" PRIMARY KEY,
	received timestamptz NOT NULL,
	counted  boolean NOT NULL,
	-- The intake's Result as JSON, as the bbolt backend stores it under
	-- "<id>/meta" (bytea: its index keys hold NUL bytes, which jsonb
	-- refuses).
	meta     bytea NOT NULL,
	raw      bytea NOT NULL,
	-- The node that received it.
	node     text NOT NULL
);
CREATE INDEX feedback_reports_received ON feedback_reports (received);

-- "d/<sha256 of the raw report>" and "k/<reporter>\x00<what it is about>"
-- name the report holding them (bytea: the keys hold NUL bytes); they go
-- with it. The intake claims the
-- keys before it stores the report, in one transaction: the reference is
-- checked at commit.
CREATE TABLE feedback_index (
	key bytea PRIMARY KEY,
	id  text COLLATE "C" NOT NULL REFERENCES feedback_reports (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX feedback_index_id ON feedback_index (id);
