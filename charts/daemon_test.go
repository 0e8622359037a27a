package charts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestDaemonAcceptsRenderedEnv runs the real pollreload binary, built from
// the repository, as `pollreload check` with the environment of every sidecar
// the chart, its ci values, the including test chart and the examples render.
// Exit code 2 means the daemon rejects the configuration (a bad signal name,
// method, duration, log format...); 0 or 1 means it accepted it and went on
// to look for the target, which does not exist here. A wrapped container's
// environment runs `pollreload -- true` instead.
func TestDaemonAcceptsRenderedEnv(t *testing.T) {
	bin := buildDaemon(t)

	sources := map[string][]byte{"chart default": render(t, chartDir)}
	for _, file := range ciValuesFiles(t) {
		sources["chart "+filepath.Base(file)] = render(t, chartDir, "-f", file)
	}
	including := filepath.Join(t.TempDir(), "pgbouncer")
	copyDir(t, filepath.Join("testdata", "pgbouncer"), including)
	copyDir(t, chartDir, filepath.Join(including, "charts", "pollreload"))
	sources["including chart"] = render(t, including)
	sources["chart native"] = render(t, chartDir, "--set", "sidecar.native=true")
	sources["including chart native"] = render(t, including, "--set", "pollreload.sidecar.native=true")
	sources["chart wrapper"] = render(t, chartDir, wrapperArgs...)
	sources["including chart wrapper"] = render(t, including, "--set", "pollreload.sidecar.mode=wrapper")
	examples, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range examples {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sources["example "+filepath.Base(file)] = data
	}

	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		for _, o := range decodeStrict(t, name, sources[name]) {
			_, spec, ok := podSpecOf(o.Value)
			if !ok {
				continue
			}
			sidecar := sidecarOf(spec)
			if sidecar == nil {
				continue
			}
			checked++
			t.Run(name+"/"+o.Name, func(t *testing.T) {
				env := resolvedEnv(t, sidecar)
				// The watched paths must exist: recreate them under a temporary root.
				root := t.TempDir()
				var dirs []string
				for _, dir := range strings.Split(env["CONFIG_DIR"], ",") {
					dir = filepath.Join(root, dir)
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					dirs = append(dirs, dir)
				}
				env["CONFIG_DIR"] = strings.Join(dirs, ",")

				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if wrappedCommand(sidecar) != nil {
					// Wrapper mode: pollreload with a child that exits at
					// once passes the child's status 0 on; a configuration
					// it refuses exits 2 before the child starts.
					env["METRICS_ADDR"] = "127.0.0.1:0"
					cmd := exec.CommandContext(ctx, bin, "--", "true")
					cmd.Env = []string{"PATH=/usr/bin:/bin"}
					for k, v := range env {
						cmd.Env = append(cmd.Env, k+"="+v)
					}
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("pollreload -- true with the wrapped container's environment: %v\nenv: %v\n%s", err, cmd.Env, out)
					}
					return
				}
				cmd := exec.CommandContext(ctx, bin, "check")
				cmd.Env = []string{"PATH=/usr/bin:/bin"}
				for k, v := range env {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatalf("run pollreload check: %v", err)
				}
				if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
					t.Errorf("got exit code %d; want 0 or 1 (configuration accepted)\nenv: %v\n%s%s", code, cmd.Env, stdout.String(), stderr.String())
				}
				if !strings.Contains(stdout.String(), "Watched paths:") {
					t.Errorf("got output %q; want the check's report", stdout.String())
				}
			})
		}
	}
	if checked == 0 {
		t.Fatal("no sidecar found in any rendered object")
	}
	t.Logf("pollreload check accepted the environment of %d rendered sidecars", checked)
}

// buildDaemon builds the pollreload binary from the repository root into a
// temporary directory.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pollreload")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pollreload: %v\n%s", err, out)
	}
	return bin
}
