-- outguard store copy (docs/config-store.md, "Growing from one node"):
-- how far the copy of a node's bbolt file into this database went, per
-- kind of record. Each batch of records commits with its row here, so an
-- interrupted copy, run again, starts after the last batch it committed.
CREATE TABLE store_copy_progress (
	source     text NOT NULL,   -- the bbolt file copied (absolute path)
	kind       text NOT NULL,   -- the kind of record (storecopy.Kind.Name)
	last_key   bytea,           -- the bbolt key of the last record done
	done       boolean NOT NULL DEFAULT false,
	copied     bigint NOT NULL DEFAULT 0,
	present    bigint NOT NULL DEFAULT 0,
	skipped    bigint NOT NULL DEFAULT 0,
	node       text NOT NULL,   -- node_name of the copy's configuration
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, kind)
);
