package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestSilentVerifyURLDelaysOnlyTheVerdict (issue 21 point 6): a
// RELOAD_VERIFY_URL that accepts connections and never answers, with
// RELOAD_TIMEOUT=1h, holds up neither the start (metrics and the first
// scan: testenv.Start waits for both) nor the delivery (the target reloads
// the change); only the verdict waits. On main, start-up and each
// delivery waited a whole RELOAD_TIMEOUT for the "before" reading.
func TestSilentVerifyURLDelaysOnlyTheVerdict(t *testing.T) {
	t.Parallel()
	silent := testenv.SilentServer(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := testenv.StartTarget(t, testenv.UniqueName("silent"), dir)
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(tg.PID())), 0o644); err != nil {
		t.Fatal(err)
	}
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":        dir,
		"PID_FILE":          pidFile,
		"RELOAD_VERIFY_URL": silent + "/metrics",
		"RELOAD_TIMEOUT":    "1h",
		"POLL_INTERVAL":     "100ms",
		"SETTLE_TIME":       "200ms",
	})
	waitScans(t, pr, 3)
	if err := os.WriteFile(conf, []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if n := len(tg.Reloads(t)); n != 1 {
			return fmt.Errorf("the target reloaded %d times; want 1", n)
		}
		return nil
	})
	if got := tg.Last(t).Files["app.conf"]; got != "v2" {
		t.Errorf("the target read %q; want v2", got)
	}
	if got := reloadsBy(t, pr, "success"); got != 0 {
		t.Errorf(`reloads_total{result="success"} = %v; want 0 while the verdict waits for the silent endpoint`, got)
	}
	waitScans(t, pr, 3) // scans go on while the verification waits
	t.Logf("delivered while the verification waits: %s", reloadState(t, pr))
}
