-- filter/content: each node's own lessons (docs/content-model.md,
-- "Several nodes"). A node scores with the sum of every node's overlay of
-- the current generation and saves only its own row, so that lessons
-- taught on different nodes add up instead of overwriting each other.
-- A reset or an import of the whole overlay starts a new generation and
-- deletes every row. stamp changes at every save, for the nodes that read
-- the others' rows.
CREATE TABLE content_overlay_nodes (
	node       text PRIMARY KEY,
	overlay    bytea NOT NULL,
	generation bigint NOT NULL,
	stamp      bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE content_overlay_stamp;

CREATE TABLE content_overlay_generation (
	one        boolean PRIMARY KEY DEFAULT true CHECK (one),
	generation bigint NOT NULL
);

INSERT INTO content_overlay_generation (one, generation) VALUES (true, 1);

-- The one fleet overlay kept before this migration carries on as the
-- lessons of its last writer.
INSERT INTO content_overlay_nodes (node, overlay, generation, stamp)
	SELECT node, overlay, 1, nextval('content_overlay_stamp')
	FROM content_overlay WHERE name = 'overlay';
