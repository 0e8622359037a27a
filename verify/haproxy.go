package verify

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file verifies a reload of HAProxy in master-worker mode (-W) through
// its master CLI (-S /path/to/socket): `show proc` gives the master's
// reload count and, since 2.5, how many of those reloads failed
// ("1 [failed: 0]"). The master re-execs itself in place on USR2, so its
// PID and start time stay; a configuration it cannot load leaves the old
// worker serving and counts a failure.

// HAProxyOptions configures an HAProxyMaster source.
type HAProxyOptions struct {
	// Socket is the master CLI's unix socket (haproxy -S PATH).
	Socket string
	// Timeout bounds the wait for the reload to be counted
	// (RELOAD_TIMEOUT); zero means 5s.
	Timeout time.Duration
	// Interval is the time between two reads; zero means 200ms.
	Interval time.Duration
}

// HAProxyMaster reads the master CLI's `show proc` before and after a
// reload: success once the reload count moved and the failed count did
// not; rejected once the failed count moved.
type HAProxyMaster struct {
	hooks             hooks
	socket            string
	timeout, interval time.Duration
}

// NewHAProxyMaster returns an HAProxyMaster source.
func NewHAProxyMaster(opts HAProxyOptions) (*HAProxyMaster, error) {
	if opts.Socket == "" {
		return nil, fmt.Errorf("haproxy master CLI: no socket: start haproxy with -W -S /path/to/master.sock")
	}
	return &HAProxyMaster{socket: opts.Socket, timeout: orDefault(opts.Timeout, 5*time.Second),
		interval: orDefault(opts.Interval, 200*time.Millisecond)}, nil
}

// String names the source for logs and `check`.
func (h *HAProxyMaster) String() string {
	return "haproxy master CLI " + h.socket + " (show proc: reloads and failed)"
}

// HAProxyCount is the master's line of `show proc`.
type HAProxyCount struct {
	PID      int
	Reloads  int
	Failed   int
	HasFails bool // false before HAProxy 2.5, which does not count failures
}

// Read asks the master CLI `show proc` once.
func (h *HAProxyMaster) Read(ctx context.Context) (HAProxyCount, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", h.socket)
	if err != nil {
		return HAProxyCount{}, fmt.Errorf("haproxy master CLI: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "show proc\n"); err != nil {
		return HAProxyCount{}, fmt.Errorf("haproxy master CLI: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, statusBodyLimit))
	if err != nil && len(b) == 0 {
		return HAProxyCount{}, fmt.Errorf("haproxy master CLI: %w", err)
	}
	return parseShowProc(string(b))
}

// parseShowProc finds the master's line:
//
//	21064           master          2 [failed: 1]   0d00h00m06s     2.6.12
func parseShowProc(s string) (HAProxyCount, error) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "master" {
			continue
		}
		var c HAProxyCount
		var err error
		if c.PID, err = strconv.Atoi(f[0]); err != nil {
			continue
		}
		if c.Reloads, err = strconv.Atoi(f[2]); err != nil {
			return c, fmt.Errorf("haproxy master CLI: show proc: reloads %q", f[2])
		}
		if len(f) >= 5 && f[3] == "[failed:" {
			if c.Failed, err = strconv.Atoi(strings.TrimSuffix(f[4], "]")); err != nil {
				return c, fmt.Errorf("haproxy master CLI: show proc: failed %q", f[4])
			}
			c.HasFails = true
		}
		return c, nil
	}
	return HAProxyCount{}, fmt.Errorf("haproxy master CLI: show proc has no master line: is the socket haproxy's master CLI (-S), not a worker's stats socket? It answered %q", firstLine(s))
}

// prepare reads the counts before the signal.
func (h *HAProxyMaster) prepare(ctx context.Context) func(context.Context, Delivery) error {
	// The master re-execs itself after a start or reload, and its socket
	// refuses connections meanwhile: try again, briefly.
	var before HAProxyCount
	berr := pollUntil(ctx, time.Now().Add(beforeRetry), 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		var err error
		before, err = h.Read(ctx)
		return err == nil, err
	})
	return func(ctx context.Context, d Delivery) error {
		if berr != nil {
			// Without a baseline no reading can tell: say so once rather
			// than verify again forever.
			return &UnverifiedError{App: "haproxy", Reason: fmt.Sprintf("the reload count before the reload is unknown (%v), so no reading after the signal can tell whether it took", berr)}
		}
		var now HAProxyCount
		err := pollUntil(ctx, d.At.Add(h.timeout), h.interval, func(ctx context.Context) (bool, error) {
			c, err := h.Read(ctx)
			if err != nil {
				return false, err // the master is re-executing: not yet
			}
			now = c
			return c.Reloads > before.Reloads, nil
		})
		switch {
		case now.Reloads > before.Reloads && now.HasFails && now.Failed > before.Failed:
			return &signaler.RejectedError{Target: fmt.Sprintf("haproxy master pid %d", now.PID),
				Answer: fmt.Sprintf("the master CLI counts failed: %d (was %d): \"Loading failure!\", the old worker keeps serving; haproxy -c -f tells why", now.Failed, before.Failed)}
		case now.Reloads > before.Reloads && !now.HasFails:
			return fmt.Errorf("haproxy master CLI: the reload was counted, but this HAProxy (before 2.5) does not count failures: cannot tell whether it loaded")
		case now.Reloads > before.Reloads:
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("haproxy master CLI: the reload count is still %d %s after the signal", now.Reloads, h.timeout)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 80 {
		line = line[:80] + "..."
	}
	return line
}

// Before reads what After compares with; a failed reading is After's to
// report.
func (x *HAProxyMaster) Before(ctx context.Context) { x.hooks.set(x.prepare(ctx)) }

// After waits for the application's verdict on the delivery.
func (x *HAProxyMaster) After(ctx context.Context, d Delivery) error { return x.hooks.run(ctx, d) }

var _ Verifier = (*HAProxyMaster)(nil)
