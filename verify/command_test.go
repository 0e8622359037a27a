package verify

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/signaler"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		line    string
		want    []string
		wantErr string
	}{
		{"nginx -t -c /etc/nginx/nginx.conf", []string{"nginx", "-t", "-c", "/etc/nginx/nginx.conf"}, ""},
		{`haproxy -c -f "/etc/my conf/haproxy.cfg"`, []string{"haproxy", "-c", "-f", "/etc/my conf/haproxy.cfg"}, ""},
		{`sh -c 'echo $HOME; exit 1'`, []string{"sh", "-c", "echo $HOME; exit 1"}, ""},
		{`a\ b  "c"  ''`, []string{"a b", "c", ""}, ""},
		{"  tab\tand\nnewline  ", []string{"tab", "and", "newline"}, ""},
		{"nginx -t; echo ok", nil, "shell operator"},
		{"nginx -t | grep ok", nil, "shell operator"},
		{"nginx -t > /dev/null", nil, "shell operator"},
		{"nginx -t -c $CONF", nil, `'$', which only a shell expands`},
		{`nginx -t -c "$CONF"`, nil, `'$', which only a shell expands`},
		{"echo `id`", nil, "which only a shell expands"},
		{"echo (x)", nil, "which only a shell understands"},
		{`echo "unclosed`, nil, "check the quotes"},
		{"   ", nil, "it is empty"},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.line)
		switch {
		case tt.wantErr == "" && (err != nil || !slices.Equal(got, tt.want)):
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("SplitCommand(%q) = %q, %v; want an error with %q", tt.line, got, err, tt.wantErr)
		}
	}
}

// TestCommandVerdicts runs real commands: exit 0 passes, another status
// is a rejection quoting the first lines of output with URL secrets
// masked, and a missing command is no verdict.
func TestCommandVerdicts(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "check.sh")
	body := "#!/bin/sh\necho \"fetching https://user:hunter22@conf.example/x?token=tok-s3cret\"\necho 'line 2' >&2\n" +
		"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo more $i; done\nexit \"$1\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	pass, err := NewCommand(CommandOptions{Line: script + " 0", Env: env, Name: "RELOAD_CHECK_COMMAND"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pass.Check(t.Context()); err != nil {
		t.Fatalf("exit 0: Check = %v; want nil", err)
	}
	fail, err := NewCommand(CommandOptions{Line: script + " 3", Env: env, Name: "RELOAD_CHECK_COMMAND"})
	if err != nil {
		t.Fatal(err)
	}
	err = fail.Check(t.Context())
	var rej *signaler.RejectedError
	if !errors.As(err, &rej) || signaler.Reason(err) != "rejected" {
		t.Fatalf("exit 3: Check = %v; want a *signaler.RejectedError", err)
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", "https://xxxxx:xxxxx@conf.example/x?token=xxxxx", "line 2", "more 8", "..."} {
		if !strings.Contains(msg, want) {
			t.Errorf("rejection %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter22") || strings.Contains(msg, "tok-s3cret") || strings.Contains(msg, "more 9") {
		t.Errorf("rejection %q shows a secret, or more than ten lines", msg)
	}
	t.Logf("rejected: %v", err)

	missing, err := NewCommand(CommandOptions{Line: "no-such-check-command-xyz -t", Env: env, Name: "RELOAD_CHECK_COMMAND"})
	if err != nil {
		t.Fatal(err)
	}
	err = missing.Check(t.Context())
	var cerr *CheckError
	if !errors.As(err, &cerr) || signaler.Reason(err) != "check_error" || errors.Is(err, signaler.ErrRejected) || !strings.Contains(err.Error(), "not found in PATH") {
		t.Fatalf("missing command: Check = %v (%s); want a *CheckError, check_error, saying it is not in PATH", err, signaler.Reason(err))
	}
	t.Logf("missing: %v", err)
}

// TestCommandTimeoutKillsGroup runs a check that starts a background
// sleeper and sleeps itself past the timeout: no verdict, and afterwards
// no process of its group is left.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	c, err := NewCommand(CommandOptions{
		Line:    `sleep 300 & echo $! > "` + pids + `"; echo $$ >> "` + pids + `"; sleep 300`,
		Shell:   true,
		Timeout: 500 * time.Millisecond,
		Env:     []string{"PATH=" + os.Getenv("PATH")},
		Name:    "RELOAD_CHECK_COMMAND",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Run(t.Context())
	if !r.TimedOut || r.Err == nil || !strings.Contains(r.Err.Error(), "ran past its timeout of 500ms") {
		t.Fatalf("Run = %+v; want a timeout", r)
	}
	if err := c.Verdict(r); signaler.Reason(err) != "check_error" {
		t.Fatalf("Verdict = %v; want check_error", err)
	}
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	var started []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, pid)
	}
	if len(started) != 2 {
		t.Fatalf("pids file %q; want the sleeper's and the shell's", b)
	}
	testenv.WaitFor(t, waitFor, func() error {
		for _, pid := range started {
			if st, err := signaler.ReadProcStat("", pid); err == nil && st.State != 'Z' {
				return errors.New("pid " + strconv.Itoa(pid) + " still runs")
			}
		}
		// Nor anything else of the group.
		if err := syscall.Kill(-started[1], 0); err == nil {
			return errors.New("process group " + strconv.Itoa(started[1]) + " still has members")
		}
		return nil
	})
	t.Logf("timed out after %s; pids %v and their group are gone", r.Took.Round(time.Millisecond), started)
}

func TestNewCommandShell(t *testing.T) {
	c, err := NewCommand(CommandOptions{Line: "test -n \"$HOME\" && echo has home", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Argv(); !slices.Equal(got, []string{"/bin/sh", "-c", "test -n \"$HOME\" && echo has home"}) {
		t.Errorf("Argv = %q", got)
	}
	if c.Timeout() != DefaultCheckTimeout {
		t.Errorf("Timeout = %s; want the default %s", c.Timeout(), DefaultCheckTimeout)
	}
	// The environment is only what is given: HOME is not set here, so the
	// test fails with exit 1, a rejection.
	if err := c.Check(t.Context()); signaler.Reason(err) != "rejected" {
		t.Errorf("Check with an empty environment = %v; want rejected (HOME unset)", err)
	}
}

// TestCommandWritesNoBytecode: a Python check (as gunicorn --check-config
// is) run by pollreload leaves no __pycache__ beside the module it loads,
// which the next scan would take for a change; a value the user set wins.
func TestCommandWritesNoBytecode(t *testing.T) {
	python := testenv.RequireTool(t, "python3", "python3")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "conf.py"), []byte("workers = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := python + " -c 'import sys; sys.path.insert(0, \"" + dir + "\"); import conf'"
	c, err := NewCommand(CommandOptions{Line: line, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Run(t.Context()); r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("Run = %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "__pycache__")); !os.IsNotExist(err) {
		t.Fatalf("the check left %s/__pycache__ (stat: %v); want none", dir, err)
	}
	c, err = NewCommand(CommandOptions{Line: line, Env: []string{"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE="}})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Run(t.Context()); r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("Run = %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "__pycache__")); err != nil {
		t.Fatalf("with PYTHONDONTWRITEBYTECODE set empty by the user, Python should write its cache as usual: %v", err)
	}
}
