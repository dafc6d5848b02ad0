-- admin/ops: audit entries that outguard store copy brought from a node's
-- bbolt file name their origin (node and bbolt sequence number), so that
-- copying the same file twice, or a resumed copy, writes each entry once
-- (docs/config-store.md, "Growing from one node"). Entries recorded by
-- the fleet itself have none.
ALTER TABLE admin_audit ADD COLUMN copied_from text;

CREATE UNIQUE INDEX admin_audit_copied_from ON admin_audit (copied_from) WHERE copied_from IS NOT NULL;
