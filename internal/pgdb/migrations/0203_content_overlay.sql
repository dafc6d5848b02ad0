-- filter/content: the content model's learned overlay, one row
-- (docs/content-model.md). It is not per domain: the model scores every
-- domain's mail.
CREATE TABLE content_overlay (
	name       text PRIMARY KEY,
	overlay    bytea NOT NULL,
	node       text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
