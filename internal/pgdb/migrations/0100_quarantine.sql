-- The message log, quarantined content and report roll-ups shared by the
-- fleet (package quarantine, docs/config-store.md). The log and the
-- content are partitioned by UTC day of the log id's time (ts): the store
-- creates the partitions it writes to, and retention drops whole days.
-- Every table that grows with traffic has the administrative domain first
-- in its key, so that it can later be distributed by domain.
CREATE TABLE quarantine_log (
	domain    text NOT NULL,               -- administrative domain, case folded
	id        text COLLATE "C" NOT NULL,   -- the log id (ULID)
	ts        timestamptz NOT NULL,        -- the id's time
	node      text NOT NULL,               -- node_name of the node that wrote it
	status    smallint NOT NULL,
	verdict   smallint NOT NULL,
	usr       text NOT NULL,               -- the search keys, folded as in bbolt's index
	identity  text NOT NULL,
	msgid     text NOT NULL,
	trace     text NOT NULL,
	client_ip inet,
	partial   boolean NOT NULL,
	sender    text NOT NULL,               -- lower case, for "contains" filters
	subject   text NOT NULL,
	rcpts     text NOT NULL,
	q_expired boolean NOT NULL DEFAULT false, -- content removed by retention
	rec       bytea NOT NULL,              -- the record, in the store's binary encoding
	PRIMARY KEY (domain, id, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX quarantine_log_id ON quarantine_log (id);
CREATE INDEX quarantine_log_usr ON quarantine_log (usr, id);
CREATE INDEX quarantine_log_identity ON quarantine_log (identity, id);
CREATE INDEX quarantine_log_msgid ON quarantine_log (msgid, id) WHERE msgid <> '';
CREATE INDEX quarantine_log_trace ON quarantine_log (trace, id) WHERE trace <> '';
CREATE INDEX quarantine_log_client_ip ON quarantine_log (client_ip, id);
-- Most mail is accepted and clean: index only the rest.
CREATE INDEX quarantine_log_status ON quarantine_log (status, id) WHERE status <> 1;
CREATE INDEX quarantine_log_verdict ON quarantine_log (verdict, id) WHERE verdict > 1;

CREATE TABLE quarantine_content (
	domain  text NOT NULL,
	id      text COLLATE "C" NOT NULL,
	ts      timestamptz NOT NULL,
	content bytea NOT NULL,                -- deflated raw message
	PRIMARY KEY (domain, id, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX quarantine_content_id ON quarantine_content (id);

-- Report counters: gran 104 ('h') hourly totals and domains, 107 ('k')
-- hourly per identity, user and sender, 100 ('d') UTC days; grp 0 for the
-- totals, else the grouping's letter; bucket the hour or day number since
-- the epoch; key "" for totals and domains.
CREATE TABLE quarantine_rollup (
	domain text NOT NULL,
	gran   smallint NOT NULL,
	grp    smallint NOT NULL,
	class  smallint NOT NULL,
	bucket integer NOT NULL,
	key    text NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (domain, gran, grp, class, bucket, key)
);

CREATE INDEX quarantine_rollup_period ON quarantine_rollup (gran, grp, class, bucket);
