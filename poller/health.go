package poller

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// This file answers /healthz and /readyz. Health measures scans only: a
// scan running for too many intervals (a hung mount), or none finishing for
// that long. A delivery in flight, such as a slow RELOAD_URL, runs beside
// the scans and never makes pollreload unhealthy.

// health is the state the probes read, under its own mutex, so they keep
// answering while the loop goroutine is stuck in a read.
type health struct {
	maxMissed int
	now       func() time.Time

	mu        sync.Mutex
	ready     bool
	scanning  bool
	scanStart time.Time
	scanGen   uint64 // counts scans, so a late watchdog knows its scan ended
	lastScan  time.Time
	effective time.Duration // base interval
	backoff   time.Duration
	missed    int // ticks the running scan missed
	// failed counts the scans that failed before the first good one, and
	// lastErr is the last one's error: /readyz says why it is not ready.
	failed  int
	lastErr error
}

func (h *health) beginScan(at time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scanning, h.scanStart, h.missed = true, at, 0
	h.scanGen++
	return h.scanGen
}

// endScan records the end of a scan and returns how many ticks it missed.
func (h *health) endScan(at time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scanning, h.lastScan = false, at
	return h.missed
}

func (h *health) setReady() {
	h.mu.Lock()
	h.ready, h.failed, h.lastErr = true, 0, nil
	h.mu.Unlock()
}

// scanFailed records a failed scan, for Ready while there is no baseline.
func (h *health) scanFailed(err error) {
	h.mu.Lock()
	if !h.ready {
		h.failed++
		h.lastErr = err
	}
	h.mu.Unlock()
}

func (h *health) setInterval(base, backoff time.Duration) {
	h.mu.Lock()
	h.effective, h.backoff = base, backoff
	h.mu.Unlock()
}

func (h *health) interval() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.effective
}

// missedTick counts a tick missed by scan gen, if it is still running, and
// returns the count (0: the scan has ended) and how long it has run.
func (h *health) missedTick(gen uint64) (int, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.scanning || h.scanGen != gen {
		return 0, 0
	}
	h.missed++
	return h.missed, h.now().Sub(h.scanStart)
}

// Healthy fails while a scan has run for more than MaxMissed intervals, or
// when no scan has finished for that long.
func (h *health) Healthy() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	limit := time.Duration(h.maxMissed)*h.effective + h.backoff
	switch {
	case h.scanning && now.Sub(h.scanStart) > limit:
		return fmt.Errorf("scan running for %s (over %d intervals); the filesystem may be hung", now.Sub(h.scanStart).Round(time.Millisecond), h.maxMissed)
	case !h.scanning && !h.lastScan.IsZero() && now.Sub(h.lastScan) > limit+h.effective:
		return fmt.Errorf("no scan for %s", now.Sub(h.lastScan).Round(time.Millisecond))
	}
	return nil
}

// Ready succeeds once the baseline scan is done.
func (h *health) Ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.ready && h.lastErr != nil:
		// A first scan that failed may never succeed (a wrong path, a
		// permission): say why, not that it is being waited for.
		return fmt.Errorf("no baseline yet: %s failed, retrying with backoff: %w", plural(h.failed, "scan"), h.lastErr)
	case !h.ready:
		return errors.New("waiting for the first scan")
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
