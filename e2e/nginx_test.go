package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// nginxSignal matches nginx's notice for a signal a process received:
// "2026/01/02 03:04:05 [notice] RECEIVER#TID: signal 1 (SIGHUP) received from SENDER".
var nginxSignal = regexp.MustCompile(`\[notice\] (\d+)#\d+: signal 1 \(SIGHUP\) received from (\d+)`)

// TestNginxReloadsFromKubeletVolume runs nginx (master and two workers) with
// its configuration in a kubelet-style volume and changes what a location
// returns. pollreload must find nginx by name, signal only the master
// (workers are replaced by the master, not signalled), and the new body must
// be served by the same master PID.
func TestNginxReloadsFromKubeletVolume(t *testing.T) {
	// Not parallel: PROCESS_NAME=nginx matches every nginx master on the
	// machine, and the nginx profile verifies each by its workers, so
	// another test's nginx holding a refused config would count rejected
	// here (seen in a full run). Sequential tests run before the parallel
	// ones start.
	nginx := testenv.RequireTool(t, "nginx", "nginx-light")
	work := t.TempDir()
	vol := filepath.Join(work, "config")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	kw := testenv.NewKubeletWriter(vol)
	if _, err := kw.Write(map[string]string{"nginx.conf": testenv.NginxConf(work, port, "version 1", "")}); err != nil {
		t.Fatal(err)
	}

	// As in a pod: nginx in the foreground, reading its configuration
	// through the volume's visible link.
	pidFile := filepath.Join(work, "nginx.pid")
	master := testenv.Spawn(t, "nginx", exec.Command(nginx,
		"-p", work, "-e", filepath.Join(work, "error.log"),
		"-c", filepath.Join(vol, "nginx.conf"),
		"-g", "daemon off;")) // testenv.NginxConf puts the pid in pidFile
	master.Grace = 5 * time.Second
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitBody(t, url, "version 1\n")
	oldWorkers := nginxWorkers(t, master.PID())

	env := map[string]string{
		"CONFIG_DIR":    vol,
		"PROCESS_NAME":  "nginx",
		"POLL_INTERVAL": "100ms",
		"LOG_LEVEL":     "debug",
	}
	// What a user runs first: `pollreload check` must select the master
	// and only the master under the default policy (roots).
	checkSelected(t, env, master.PID(), oldWorkers)
	pr := testenv.Start(t, env)

	if _, err := kw.Write(map[string]string{"nginx.conf": testenv.NginxConf(work, port, "version 2", "")}); err != nil {
		t.Fatal(err)
	}
	waitBody(t, url, "version 2\n")

	if !alive(master.PID()) || master.Exited() {
		t.Fatalf("nginx master %d is gone; want it to survive the reload", master.PID())
	}
	b, err := os.ReadFile(pidFile)
	if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || got != master.PID() {
		t.Errorf("nginx.pid = %q (err %v); want the unchanged master PID %d", b, err, master.PID())
	}
	// The master replaces its workers on SIGHUP: the old ones exit
	// gracefully, new ones start.
	testenv.WaitFor(t, deliveryTimeout, func() error {
		for _, w := range oldWorkers {
			if alive(w) {
				return fmt.Errorf("old worker %d still running", w)
			}
		}
		return nil
	})
	newWorkers := nginxWorkers(t, master.PID())
	for _, w := range newWorkers {
		if slices.Contains(oldWorkers, w) {
			t.Errorf("worker %d survived the reload; want all workers replaced", w)
		}
	}

	// nginx logs, in the receiving process's own name, every signal with
	// its sender: exactly one SIGHUP, to the master, from pollreload.
	errorLog, err := os.ReadFile(filepath.Join(work, "error.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Another test run on the machine may signal every nginx too (by the
	// same name); only this run's pollreload is judged.
	fromUs := 0
	for _, hup := range nginxSignal.FindAllStringSubmatch(string(errorLog), -1) {
		receiver, _ := strconv.Atoi(hup[1])
		sender, _ := strconv.Atoi(hup[2])
		if sender != pr.PID() {
			t.Logf("ignoring a SIGHUP from pid %d, not this test's pollreload", sender)
			continue
		}
		fromUs++
		if receiver != master.PID() {
			t.Errorf("pollreload sent SIGHUP to %d; want only the master %d (workers %v)", receiver, master.PID(), oldWorkers)
		}
	}
	if fromUs != 1 {
		t.Errorf("nginx logged %d SIGHUPs from pollreload; want exactly 1 (one change, one reload)", fromUs)
	}
	waitVerifiedReloads(t, pr, 1)
	t.Logf("nginx: master %d kept, workers %v replaced by %v, SIGHUP from pollreload %d to the master only",
		master.PID(), oldWorkers, newWorkers, pr.PID())
}

// waitBody waits until GET url answers 200 with body.
func waitBody(t *testing.T, url, body string) {
	t.Helper()
	testenv.WaitFor(t, deliveryTimeout, func() error {
		code, got, err := httpGet(context.Background(), url)
		if err != nil {
			return err
		}
		if code != 200 || got != body {
			return fmt.Errorf("GET %s = %d %q; want 200 %q", url, code, got, body)
		}
		return nil
	})
}

// nginxWorkers returns the worker PIDs of an nginx master, once it has the
// two it is configured for.
func nginxWorkers(t *testing.T, master int) []int {
	t.Helper()
	var workers []int
	testenv.WaitFor(t, deliveryTimeout, func() error {
		workers = children(master)
		if len(workers) != 2 {
			return fmt.Errorf("nginx master %d has workers %v; want 2", master, workers)
		}
		return nil
	})
	slices.Sort(workers)
	return workers
}

// checkSelected runs `pollreload check` and requires its target table to
// mark want as selected and each of notWanted as not selected. Rows of other
// processes (another nginx on the machine) are ignored.
func checkSelected(t *testing.T, env map[string]string, want int, notWanted []int) {
	t.Helper()
	res := testenv.Run(t, deliveryTimeout, env, "check")
	if res.ExitCode != 0 {
		t.Fatalf("pollreload check: exit %d; want 0\nstdout:\n%s\nstderr:\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	selected := map[int]string{}
	for _, line := range strings.Split(res.Stdout, "\n") {
		// PID NAME UID SELECTED CATCHES-SIGHUP SIGNAL-ALLOWED
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil {
			selected[pid] = f[3]
		}
	}
	if got := selected[want]; got != "yes" {
		t.Errorf("pollreload check: master %d selected %q; want yes\n%s", want, got, res.Stdout)
	}
	for _, pid := range notWanted {
		if got := selected[pid]; got != "no" {
			t.Errorf("pollreload check: worker %d selected %q; want no\n%s", pid, got, res.Stdout)
		}
	}
}
