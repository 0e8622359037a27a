package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// waitVerifiedReloads waits until pollreload counts n successful reloads. A
// reload counts once verified (the signalled process still runs after a
// grace, the app's metrics or workers confirm it), which may be a moment
// after the application already runs the new content.
func waitVerifiedReloads(t *testing.T, pr *testenv.Pollreload, n float64) {
	t.Helper()
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if got := pr.Metric(t, "pollreload_reloads_total", map[string]string{"result": "success"}); got != n {
			return fmt.Errorf("pollreload_reloads_total{result=\"success\"} = %v; want %v", got, n)
		}
		return nil
	})
}

// verifiedAtLeast returns pollreload_reloads_total{result="success"} once it
// reaches n, or its value when deliveryTimeout ran out first: the last
// reload an application saw may still be under verification.
func verifiedAtLeast(pr *testenv.Pollreload, n float64) float64 {
	var got float64
	_ = testenv.Poll(deliveryTimeout, func() error {
		s, err := testenv.Scrape(context.Background(), pr.MetricsAddr)
		if err != nil {
			return err
		}
		got, _ = s.Sum("pollreload_reloads_total", map[string]string{"result": "success"})
		if got < n {
			return fmt.Errorf("%v < %v", got, n)
		}
		return nil
	})
	return got
}

// deliveredReloads counts the daemon's "reload delivered" log lines: one
// per signal or request sent, verified or not.
func deliveredReloads(pr *testenv.Pollreload) int {
	return strings.Count(pr.Output(), `msg="reload delivered"`)
}
