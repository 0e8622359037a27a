package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pollreload/pollreload/signaler"
)

// This file verifies a PostgreSQL reload through SQL, with the pgx driver:
// pg_conf_load_time() is when the server last read its configuration files
// (a new connection inherits the postmaster's), and pg_file_settings shows
// each setting of those files with the error that kept it from applying.
// PostgreSQL applies what it can of a file with errors ("contains errors;
// unaffected changes were applied") and still moves pg_conf_load_time(),
// so a reload is accepted only when it moved and no row has an error.

// fileErrorsQuery returns the load time and at most five settings the
// server refused, each as "file:line name: error".
const fileErrorsQuery = `SELECT pg_conf_load_time(),
  (SELECT string_agg(format('%s:%s %s: %s', sourcefile, sourceline, name, error), '; ')
     FROM (SELECT * FROM pg_file_settings WHERE error IS NOT NULL ORDER BY seqno LIMIT 5) e)`

// pgErrorLen bounds the refused settings kept in a rejection.
const pgErrorLen = 512

// PostgresOptions configures a PostgresSQL source.
type PostgresOptions struct {
	// DSN is a libpq connection string ("host=/run/postgresql port=5432
	// user=postgres dbname=postgres") or URL; host may be a unix socket
	// directory. It may carry a password: it is never shown.
	DSN string
	// Timeout bounds the wait for the new load time (RELOAD_TIMEOUT); zero
	// means 5s.
	Timeout time.Duration
	// Interval is the time between two reads; zero means 200ms.
	Interval time.Duration
}

// PostgresSQL reads pg_conf_load_time() and pg_file_settings before and
// after a reload.
type PostgresSQL struct {
	hooks             hooks
	cfg               *pgx.ConnConfig
	shown             string
	timeout, interval time.Duration
}

// NewPostgresSQL returns a PostgresSQL source; a DSN that does not parse is
// an error that does not repeat it (it may hold a password).
func NewPostgresSQL(opts PostgresOptions) (*PostgresSQL, error) {
	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgresql connection string does not parse (not shown, it may hold a password); want libpq's key=value form or a postgres:// URL")
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 2*time.Second {
		cfg.ConnectTimeout = 2 * time.Second
	}
	// The simple protocol: one round trip, no prepared statement left over.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	shown := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	return &PostgresSQL{cfg: cfg, shown: shown, timeout: orDefault(opts.Timeout, 5*time.Second),
		interval: orDefault(opts.Interval, 200*time.Millisecond)}, nil
}

// String names the source for logs and `check`, without the password.
func (p *PostgresSQL) String() string {
	return "postgresql " + p.shown + " (pg_conf_load_time() and pg_file_settings.error)"
}

// PostgresState is one reading.
type PostgresState struct {
	LoadTime time.Time
	// Errors lists refused settings, "file:line name: error"; empty when
	// every setting of the files applied.
	Errors string
}

// Read connects (a new session, which inherits the postmaster's load time)
// and reads the state once.
func (p *PostgresSQL) Read(ctx context.Context) (PostgresState, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		return PostgresState{}, fmt.Errorf("postgresql %s: %w", p.shown, err)
	}
	defer conn.Close(context.Background())
	var st PostgresState
	var errs *string
	if err := conn.QueryRow(ctx, fileErrorsQuery).Scan(&st.LoadTime, &errs); err != nil {
		if strings.Contains(err.Error(), "permission denied") {
			return st, fmt.Errorf("postgresql %s: %w (pg_file_settings is readable by superusers, or grant: GRANT SELECT ON pg_file_settings TO %s; GRANT EXECUTE ON FUNCTION pg_show_all_file_settings() TO %s)", p.shown, err, p.cfg.User, p.cfg.User)
		}
		return st, fmt.Errorf("postgresql %s: %w", p.shown, err)
	}
	if errs != nil {
		st.Errors = *errs
		if len(st.Errors) > pgErrorLen {
			st.Errors = st.Errors[:pgErrorLen] + "..."
		}
	}
	return st, nil
}

// prepare reads the load time before the signal.
func (p *PostgresSQL) prepare(ctx context.Context) func(context.Context, Delivery) error {
	before, berr := p.Read(ctx)
	return func(ctx context.Context, d Delivery) error {
		since := before.LoadTime
		if berr != nil || since.IsZero() {
			since = d.At // the load time must then pass the signal
		}
		var now PostgresState
		err := pollUntil(ctx, d.At.Add(p.timeout), p.interval, func(ctx context.Context) (bool, error) {
			st, err := p.Read(ctx)
			if err != nil {
				return false, err
			}
			now = st
			return st.LoadTime.After(since), nil
		})
		switch {
		case now.LoadTime.After(since) && now.Errors != "":
			return &signaler.RejectedError{Target: "postgresql " + p.shown,
				Answer: "reloaded its configuration files, but refused settings (pg_file_settings.error): " + now.Errors}
		case now.LoadTime.After(since):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("postgresql %s: pg_conf_load_time() still %s, %s after the signal", p.shown, now.LoadTime.UTC().Format(time.RFC3339Nano), p.timeout)
	}
}

// Before reads what After compares with; a failed reading is After's to
// report.
func (x *PostgresSQL) Before(ctx context.Context) { x.hooks.set(x.prepare(ctx)) }

// After waits for the application's verdict on the delivery.
func (x *PostgresSQL) After(ctx context.Context, d Delivery) error { return x.hooks.run(ctx, d) }

var _ Verifier = (*PostgresSQL)(nil)
