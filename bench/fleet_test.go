package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestFleetSmoke runs bench/fleet's whole path in small (5 replicas per
// configuration, 3 s windows, two trees, attribute caching off and on, and
// the naive poller once), so that the fleet benchmark cannot rot between its
// full runs. It checks what the benchmark is for, not how fast anything is:
// every replica polled the counting FUSE server, the steady polls of
// pollreload read no file content while the naive poller read files, and
// pollreload looked up every file of the plain tree on its ticks.
func TestFleetSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and runs about 40 s")
	}
	testenv.RequireTool(t, "fusermount", "fuse3")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv(testenv.RequireToolsEnv) == "1" {
			t.Fatalf("/dev/fuse: %v", err)
		}
		t.Skipf("/dev/fuse: %v", err)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := func(out, pkg string, env ...string) string {
		path := filepath.Join(bin, out)
		cmd := exec.Command("go", "build", "-o", path, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return path
	}
	pollreload := build("pollreload", ".", "CGO_ENABLED=0")
	naive := build("naive", "./bench/naive")
	fleet := build("fleet", "./bench/fleet")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fleet, "-pollreload", pollreload, "-naive", naive,
		"-replicas", "5", "-trees", "plain20,kubelet", "-cache", "off,on",
		"-warmup", "2s", "-window", "3s", "-naive-runs", "5/plain20/off", "-dir", t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("fleet: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("fleet output:\n%s", stdout.String())

	// The per-kind table: | poller | N | tree | cache | lookup | getattr |
	// open | read | readdir | readlink | other | total | ...
	rows := map[string][]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 13 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[1] == "pollreload" || cells[1] == "naive" {
			if _, err := strconv.ParseFloat(cells[5], 64); err == nil {
				rows[strings.Join(cells[1:5], "/")] = cells[5:]
			}
		}
	}
	num := func(key string, col int) float64 {
		t.Helper()
		r, ok := rows[key]
		if !ok {
			t.Fatalf("no row %s in the per-kind table", key)
		}
		v, err := strconv.ParseFloat(r[col], 64)
		if err != nil {
			t.Fatalf("row %s column %d: %v", key, col, err)
		}
		return v
	}
	const lookup, read = 0, 3
	for _, key := range []string{"pollreload/5/plain20/off", "pollreload/5/kubelet/off", "pollreload/5/plain20/on", "pollreload/5/kubelet/on"} {
		if got := num(key, read); got != 0 {
			t.Errorf("%s: %v reads per replica per tick; want 0: a steady poll reads no content", key, got)
		}
	}
	if got := num("pollreload/5/plain20/off", lookup); got < 20 {
		t.Errorf("pollreload/5/plain20/off: %v lookups per replica per tick; want at least one per file (20)", got)
	}
	if got := num("naive/5/plain20/off", read); got == 0 {
		t.Errorf("naive/5/plain20/off: no reads; the naive poller reads every file")
	}
}
