package verify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
)

// helperMasterScript is masterScript with a helper: on every SIGHUP the
// master forks a child that lives a moment (as a master forks a check or a
// cache loader), and replaces its two workers only if $2 says "good".
const helperMasterScript = `trap 'sleep 0.3 & read m < "$2"; if [ "$m" = good ]; then kill $w1 $w2; sleep 1000 & w1=$!; sleep 1000 & w2=$!; fi' HUP
trap 'kill $w1 $w2; exit 0' TERM
sleep 1000 & w1=$!
sleep 1000 & w2=$!
echo ready > "$1"
while :; do wait; done`

// TestChildrenVerifierIsNotFooledByAHelper is issue 21 point 16: a new
// child that is not a new generation of workers (a helper living a moment
// beside the old workers) must not count as a reload; the bad config is
// rejected, the good ones accepted.
func TestChildrenVerifierIsNotFooledByAHelper(t *testing.T) {
	mode := filepath.Join(t.TempDir(), "mode")
	h := startShell(t, helperMasterScript, mode)
	t.Cleanup(h.stop)
	p, err := signaler.NewProcess(signaler.ProcessOptions{PIDFile: h.pidFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	cv := NewChildrenVerifier(ChildrenOptions{Timeout: 5 * time.Second, Interval: 50 * time.Millisecond})
	for i, step := range []struct{ mode, want string }{{"good", "success"}, {"bad", "rejected"}, {"good", "success"}} {
		if err := os.WriteFile(mode, []byte(step.mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Deliver(t.Context(), p, cv, time.Now())
		if got := signaler.Reason(err); got != step.want {
			t.Fatalf("step %d (%s config): %v (%s); want %s", i, step.mode, err, got, step.want)
		}
		t.Logf("step %d, %s config: %s (%v)", i, step.mode, step.want, err)
	}
}

// TestChildrenVerifierRefusesSSHD: sshd's children are sessions; judged by
// them a valid reload would wait forever. The verifier refuses it as a
// setup error of kind Sessions (the caller's fix: RELOAD_VERIFY=exec),
// before and after a delivery;
// after one (a target found once pollreload runs) the reload counts
// unverified, which is not retried.
func TestChildrenVerifierRefusesSSHD(t *testing.T) {
	s := testenv.StartSSHD(t, "one")
	err := ChildrenUnfit("", s.Proc.PID(), "sshd", syscall.SIGHUP)
	var ue *ChildrenUnfitError
	if !errors.Is(err, ErrChildrenUnfit) || !errors.As(err, &ue) || ue.Kind != Sessions || !strings.Contains(err.Error(), "re-executing itself in place") {
		t.Fatalf("ChildrenUnfit(sshd) = %#v; want a *ChildrenUnfitError of kind Sessions", err)
	}
	cv := NewChildrenVerifier(ChildrenOptions{Timeout: time.Second})
	err = hup(t, cv, targetOf(t, s.Proc.PID(), "sshd"))
	if !errors.Is(err, ErrChildrenUnfit) || signaler.Reason(err) != "unverified" {
		t.Fatalf("After on sshd = %v (%s); want ErrChildrenUnfit counted unverified", err, signaler.Reason(err))
	}
	t.Log(err)
}

func TestReplaced(t *testing.T) {
	a, b, c, d := procEntry{1, 1}, procEntry{2, 2}, procEntry{3, 3}, procEntry{4, 4}
	tests := []struct {
		name     string
		old, now []procEntry
		want     []procEntry
	}{
		{"nothing new", []procEntry{a, b}, []procEntry{a, b}, nil},
		{"a helper beside the old workers", []procEntry{a, b}, []procEntry{a, b, c}, nil},
		{"a full new generation, old ones leaving", []procEntry{a, b}, []procEntry{a, b, c, d}, []procEntry{c, d}},
		{"one new while an old one left", []procEntry{a, b}, []procEntry{b, c}, nil},
		{"a smaller generation, old ones gone", []procEntry{a, b, c}, []procEntry{d}, []procEntry{d}},
		{"a new helper while an old helper left", []procEntry{a, b, c}, []procEntry{a, b, d}, nil},
		{"all replaced", []procEntry{a, b}, []procEntry{c, d}, []procEntry{c, d}},
		{"an old one died, none new", []procEntry{a, b}, []procEntry{a}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := replaced(tt.old, tt.now)
			if len(got) != len(tt.want) || (got != nil) != (tt.want != nil) {
				t.Fatalf("replaced(%v, %v) = %v; want %v", tt.old, tt.now, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("replaced(%v, %v) = %v; want %v", tt.old, tt.now, got, tt.want)
				}
			}
		})
	}
}
