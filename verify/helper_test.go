package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// waitFor bounds every wait on a shell so a broken test fails instead of
// hanging; it is not a speed assertion.
const waitFor = 20 * time.Second

// shell is a /bin/sh running a script, in its own process group, whose
// stdin stays open until the test ends (so a `read` blocks without a child).
type shell struct {
	*testenv.Process
	out string // the script's $1
}

// startShell runs script under /bin/sh with $1 an output file and the
// further args, and waits for the script to write "ready" to $1.
func startShell(t *testing.T, script string, args ...string) *shell {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", out}, args...)...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	p := testenv.Spawn(t, "sh", cmd)
	r.Close()
	t.Cleanup(func() { w.Close() })
	s := &shell{Process: p, out: out}
	testenv.WaitFor(t, waitFor, func() error {
		if b, _ := os.ReadFile(out); !strings.Contains(string(b), "ready") {
			return os.ErrNotExist
		}
		return nil
	})
	return s
}

// pidFile writes the shell's PID to a PID file and returns its path.
func (s *shell) pidFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(f, []byte(strconv.Itoa(s.PID())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// stop asks the shell to end with SIGTERM (its trap takes its children
// along), before Spawn's cleanup kills the group.
func (s *shell) stop() {
	_ = s.Signal(syscall.SIGTERM)
	_ = s.Wait(waitFor)
}
