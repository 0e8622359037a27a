package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// deliveryTimeout bounds how long a test waits for a change to reach the
// application: many poll intervals, for a loaded CI machine. It is a limit,
// not a latency assertion.
const deliveryTimeout = 30 * time.Second

// httpGet returns the status and body of a GET to url.
func httpGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitTargetFiles waits until the target's latest read is exactly want.
func waitTargetFiles(t *testing.T, tg *testenv.Target, want map[string]string) testenv.TargetRecord {
	t.Helper()
	var last testenv.TargetRecord
	testenv.WaitFor(t, deliveryTimeout, func() error {
		last = tg.Last(t)
		if !maps.Equal(last.Files, want) {
			return fmt.Errorf("target %s runs with %v (record %d, errors %v); want %v", tg.Name, last.Files, last.Seq, last.Errors, want)
		}
		return nil
	})
	return last
}

// waitScans waits until pollreload has finished n more scans than it had
// when called: a way to let time pass in units of the daemon's own clock.
func waitScans(t *testing.T, pr *testenv.Pollreload, n int) {
	t.Helper()
	start := pr.Metric(t, "pollreload_scans_total", nil)
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if got := pr.Metric(t, "pollreload_scans_total", nil); got < start+float64(n) {
			return fmt.Errorf("pollreload_scans_total = %v; want >= %v", got, start+float64(n))
		}
		return nil
	})
}

// procStat returns the parent PID, the state letter and the start time
// (clock ticks since boot) of pid, from /proc/PID/stat.
func procStat(pid int) (ppid int, state string, start uint64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", 0, err
	}
	// comm is parenthesised and may contain spaces: split after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, "", 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, _ = strconv.Atoi(fields[1])
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return ppid, fields[0], start, nil
}

// children returns the live (non-zombie) child PIDs of pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, _, err := procStat(child); err == nil && ppid == pid && state != "Z" {
			out = append(out, child)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	_, state, _, err := procStat(pid)
	return err == nil && state != "Z"
}
