-- admin/ops: the last TOTP time step accepted per console account, shared
-- by the fleet, so that a code used on one node is a replay on every node
-- (RFC 6238 section 5.2; docs/config-admin.md).
CREATE TABLE admin_totp_steps (
	account text PRIMARY KEY,
	step    bigint NOT NULL
);
