package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file verifies a uWSGI reload through its stats server (--stats
// ADDR): the master re-execs itself in place on HUP (same PID and start
// time) and forks new workers. A worker without an application loaded
// (module = nosuchmodule:app "reloads", then every request answers 500) is
// the refusal.

// uwsgiStatsLimit bounds one read of the stats server: its JSON grows with
// the workers and cores, a few kB each.
const uwsgiStatsLimit = 1 << 20

// appsSettle is how long new workers must show no application before that
// counts as a refusal: with lazy-apps a worker loads its app after the fork.
const appsSettle = time.Second

// UWSGIOptions configures a UWSGIStats source.
type UWSGIOptions struct {
	// Addr is the stats server: host:port, or a unix socket path.
	Addr string
	// Timeout bounds the wait for new workers (RELOAD_TIMEOUT); zero means
	// 5s.
	Timeout time.Duration
	// Interval is the time between two reads; zero means 200ms.
	Interval time.Duration
}

// UWSGIStats reads uWSGI's stats server before and after a reload: success
// once every worker is new and has its application loaded; rejected when
// the new workers have none.
type UWSGIStats struct {
	hooks             hooks
	addr              string
	timeout, interval time.Duration
}

// NewUWSGIStats returns a UWSGIStats source.
func NewUWSGIStats(opts UWSGIOptions) (*UWSGIStats, error) {
	if opts.Addr == "" {
		return nil, fmt.Errorf("uwsgi stats: no address: start uwsgi with --stats 127.0.0.1:PORT (or stats = ... in its ini)")
	}
	return &UWSGIStats{addr: opts.Addr, timeout: orDefault(opts.Timeout, 5*time.Second),
		interval: orDefault(opts.Interval, 200*time.Millisecond)}, nil
}

// String names the source for logs and `check`.
func (u *UWSGIStats) String() string {
	return "uwsgi stats server " + u.addr + " (new workers with their apps loaded)"
}

// UWSGIWorker is one worker as the stats server shows it.
type UWSGIWorker struct {
	ID   int `json:"id"`
	PID  int `json:"pid"`
	Apps []struct {
		ID int `json:"id"`
	} `json:"apps"`
}

// UWSGIState is what the stats server says about the master and workers.
type UWSGIState struct {
	PID     int           `json:"pid"`
	Workers []UWSGIWorker `json:"workers"`
}

// Read reads the stats server once.
func (u *UWSGIStats) Read(ctx context.Context) (UWSGIState, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	network := "tcp"
	if strings.HasPrefix(u.addr, "/") || strings.HasPrefix(u.addr, "@") {
		network = "unix"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, u.addr)
	if err != nil {
		return UWSGIState{}, fmt.Errorf("uwsgi stats %s: %w", u.addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	b, err := io.ReadAll(io.LimitReader(conn, uwsgiStatsLimit))
	if err != nil {
		return UWSGIState{}, fmt.Errorf("uwsgi stats %s: %w", u.addr, err)
	}
	var st UWSGIState
	if err := json.Unmarshal(b, &st); err != nil {
		return UWSGIState{}, fmt.Errorf("uwsgi stats %s: not the stats server's JSON (%d bytes): %w", u.addr, len(b), err)
	}
	return st, nil
}

// pids returns the PIDs of the running workers.
func (s UWSGIState) pids() []int {
	var out []int
	for _, w := range s.Workers {
		if w.PID > 0 {
			out = append(out, w.PID)
		}
	}
	return out
}

// prepare reads the workers before the signal.
func (u *UWSGIStats) prepare(ctx context.Context) func(context.Context, Delivery) error {
	var before UWSGIState
	berr := pollUntil(ctx, time.Now().Add(beforeRetry), 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		before, err = u.Read(ctx)
		return err == nil, err
	})
	return func(ctx context.Context, d Delivery) error {
		if berr != nil {
			// Without a baseline no reading can tell: say so once rather
			// than verify again forever.
			return &UnverifiedError{App: "uwsgi", Reason: fmt.Sprintf("the workers before the reload are unknown (%v), so no reading after the signal can tell whether it took", berr)}
		}
		old := before.pids()
		var now UWSGIState
		var appless time.Time // when new workers were first seen without apps
		var verdict error
		err := pollUntil(ctx, d.At.Add(u.timeout), u.interval, func(ctx context.Context) (bool, error) {
			st, err := u.Read(ctx)
			if err != nil {
				return false, err // the master is re-executing: not yet
			}
			now = st
			pids := st.pids()
			if len(pids) == 0 || slices.ContainsFunc(pids, func(p int) bool { return slices.Contains(old, p) }) {
				return false, nil // not every worker replaced yet
			}
			var without []int
			for _, w := range st.Workers {
				if w.PID > 0 && len(w.Apps) == 0 {
					without = append(without, w.PID)
				}
			}
			if len(without) == 0 {
				verdict = nil
				return true, nil
			}
			if appless.IsZero() {
				appless = time.Now()
			}
			verdict = &signaler.RejectedError{Target: fmt.Sprintf("uwsgi master pid %d", st.PID),
				Answer: fmt.Sprintf("the new workers %v have no application loaded (the stats server lists no apps): every request would fail; check the module/wsgi-file setting and uwsgi's log", without)}
			return time.Since(appless) >= appsSettle, nil
		})
		if verdict != nil {
			return verdict
		}
		if err != nil {
			return err
		}
		if pids := now.pids(); len(pids) > 0 && !slices.ContainsFunc(pids, func(p int) bool { return slices.Contains(old, p) }) {
			return nil
		}
		return fmt.Errorf("uwsgi stats %s: workers %v not replaced %s after the signal (were %v)", u.addr, now.pids(), u.timeout, old)
	}
}

// Before reads what After compares with; a failed reading is After's to
// report.
func (x *UWSGIStats) Before(ctx context.Context) { x.hooks.set(x.prepare(ctx)) }

// After waits for the application's verdict on the delivery.
func (x *UWSGIStats) After(ctx context.Context, d Delivery) error { return x.hooks.run(ctx, d) }

var _ Verifier = (*UWSGIStats)(nil)
