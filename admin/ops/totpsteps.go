package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TOTPSteps remembers the last TOTP time step accepted per account, so
// that a code is accepted once (RFC 6238 section 5.2): in this process by
// default, or in PostgreSQL for a fleet (PgTOTPSteps), where a code used on
// one node is a replay on all of them.
type TOTPSteps interface {
	// Use records step as account's last accepted one and reports true,
	// or reports false when step is not after the last one.
	Use(ctx context.Context, account string, step uint64) (bool, error)
}

// pgTOTPTimeout bounds one Use of PgTOTPSteps.
const pgTOTPTimeout = 5 * time.Second

// PgTOTPSteps keeps the steps in the table admin_totp_steps of the
// fleet's database (migration 0209_admin_totp_steps.sql).
type PgTOTPSteps struct {
	Pool *pgxpool.Pool
}

// Use implements TOTPSteps in one statement: the row moves forward only.
func (s PgTOTPSteps) Use(ctx context.Context, account string, step uint64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTOTPTimeout)
	defer cancel()
	var got int64
	err := s.Pool.QueryRow(ctx, `INSERT INTO admin_totp_steps (account, step) VALUES ($1, $2)
		ON CONFLICT (account) DO UPDATE SET step = excluded.step WHERE admin_totp_steps.step < excluded.step
		RETURNING step`, account, int64(step)).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("admin: recording a TOTP step: %w", err)
	}
	return true, nil
}
