-- Trigram indexes for the "contains" filters of a log search (sender,
-- subject, recipients; package quarantine, docs/config-store.md). The
-- columns hold their values lower-cased by outguard, and a search asks
-- col LIKE '%needle%', which a pg_trgm GIN index answers when the needle
-- has three letters or digits in a row; shorter needles keep the bounded
-- scan. pg_trgm ships with PostgreSQL and is a trusted extension: the
-- owner of the database may create it (or an administrator does, once).
-- On a database that already holds a large log, the indexes take minutes
-- to build: apply this with `outguard store migrate`.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX quarantine_log_sender_trgm ON quarantine_log USING gin (sender gin_trgm_ops);
CREATE INDEX quarantine_log_subject_trgm ON quarantine_log USING gin (subject gin_trgm_ops);
CREATE INDEX quarantine_log_rcpts_trgm ON quarantine_log USING gin (rcpts gin_trgm_ops);
