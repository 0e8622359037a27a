package verify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// counterScript counts its runs in the file $COUNT and exits with the
// status given for that run (the last one for every later run).
const counterScript = `n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNT"; echo "run $n"; set -- %s; shift $(( n > $# ? $# - 1 : n - 1 )); exit $1`

func TestCommandVerifier(t *testing.T) {
	tests := []struct {
		name string
		line string
		// shell runs line with /bin/sh -c; statuses are those of the runs
		// (Before, then After's) for counterScript.
		shell    bool
		statuses string
		want     string // accepted, rejected or unknown
		text     string // in the rejection's answer or the unknown error
	}{
		{name: "exit 0", statuses: "0", want: "accepted"},
		{name: "exit 1, with the output as the reason", statuses: "0 1", want: "rejected",
			text: "exit status 1: run 2 (before the delivery: exit status 0: run 1)"},
		{name: "not yet, then accepted", statuses: "0 3 3 0", want: "accepted"},
		{name: "not yet, then rejected", statuses: "0 2 1", want: "rejected", text: "exit status 1: run 3"},
		{name: "never decides", statuses: "3", want: "unknown", text: "gave no verdict (0 accepted, 1 rejected) within 1s of the delivery: last exit status 3; it printed: run"},
		{name: "cannot start", line: "/nonexistent/app-status", want: "unknown", text: "cannot start /nonexistent/app-status"},
		{name: "secrets in the output are masked", line: `echo "cannot reach postgres://admin:s3cret@db/x?sslpassword=hunter22"; exit 1`, shell: true,
			want: "rejected", text: "postgres://xxxxx:xxxxx@db/x?sslpassword=xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count := filepath.Join(t.TempDir(), "count")
			line, shell := tt.line, tt.shell
			if line == "" {
				line, shell = strings.Replace(counterScript, "%s", tt.statuses, 1), true
			}
			cmd, err := NewCommand(CommandOptions{Line: line, Shell: shell, Timeout: 5 * time.Second, Env: []string{"COUNT=" + count}, Name: "RELOAD_VERIFY_COMMAND"})
			if err != nil {
				t.Fatal(err)
			}
			cv, err := NewCommandVerifier(CommandVerifierOptions{Command: cmd, Timeout: time.Second, Interval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			cv.Before(t.Context())
			err = cv.After(t.Context(), Delivery{At: time.Now()})
			got, text := "accepted", ""
			var rej *signaler.RejectedError
			switch {
			case errors.As(err, &rej):
				got, text = "rejected", rej.Answer
			case err != nil:
				got, text = "unknown", err.Error()
			}
			if got != tt.want || !strings.Contains(text, tt.text) {
				t.Errorf("After = %s %q; want %s %q", got, text, tt.want, tt.text)
			}
			if strings.Contains(text, "s3cret") || strings.Contains(text, "hunter22") {
				t.Errorf("a secret reached the verdict: %q", text)
			}
			if b, _ := os.ReadFile(count); tt.statuses != "" && len(b) == 0 {
				t.Errorf("the command never ran")
			}
			t.Logf("%s: %s", got, text)
		})
	}
}
