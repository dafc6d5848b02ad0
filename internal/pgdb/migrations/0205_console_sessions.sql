-- admin/console: the signed-in console sessions of a fleet
-- (docs/config-admin.md), valid on every node. The session's token is in
-- the user's cookie only: the table keys a SHA-256 hash of it.
CREATE TABLE console_sessions (
	token_hash  bytea PRIMARY KEY,
	csrf        text NOT NULL,
	-- The principal: the token's or account's name, its domain ("" for
	-- scope all), and whether it is an account.
	name        text NOT NULL,
	domain      text NOT NULL,
	account     boolean NOT NULL,
	-- A hash of the credential at sign-in (password hash, second factor
	-- and scope): a session whose credential changed ends.
	credential  text NOT NULL,
	created     timestamptz NOT NULL,
	seen        timestamptz NOT NULL,
	-- The one-shot notice of the next page.
	flash       text NOT NULL DEFAULT '',
	flash_error boolean NOT NULL DEFAULT false,
	-- The node it was signed in on.
	node        text NOT NULL
);
CREATE INDEX console_sessions_seen ON console_sessions (seen);
CREATE INDEX console_sessions_name ON console_sessions (name, account);
