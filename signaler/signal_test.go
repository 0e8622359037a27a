package signaler

import (
	"strings"
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr string
	}{
		{in: "SIGHUP", want: syscall.SIGHUP},
		{in: "HUP", want: syscall.SIGHUP},
		{in: "hup", want: syscall.SIGHUP},
		{in: "sigusr1", want: syscall.SIGUSR1},
		{in: " USR2 ", want: syscall.SIGUSR2},
		{in: "1", want: syscall.SIGHUP},
		{in: "10", want: syscall.SIGUSR1},
		{in: "SIGWINCH", want: syscall.SIGWINCH},
		{in: "", wantErr: "want a name such as SIGHUP, HUP or hup, or a number from 1 to 31"},
		{in: "SIGFOO", wantErr: `invalid signal "SIGFOO": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{in: "0", wantErr: "a number from 1 to 31"},
		{in: "32", wantErr: "a number from 1 to 31"},
		{in: "-1", wantErr: "a number from 1 to 31"},
		{in: "SIG", wantErr: "a number from 1 to 31"},
		{in: "KILL", wantErr: "SIGKILL cannot be caught"},
		{in: "19", wantErr: "SIGSTOP cannot be caught"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseSignal(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSignal(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckCatches(t *testing.T) {
	hup := sigBit(syscall.SIGHUP)
	tests := []struct {
		name    string
		st      procStatus
		sig     syscall.Signal
		wantErr string
	}{
		{"handler installed", procStatus{SigCgt: hup}, syscall.SIGHUP, ""},
		{"no handler, terminating default", procStatus{}, syscall.SIGHUP, "has no SIGHUP handler yet and the default action would terminate it"},
		{"ignored", procStatus{SigIgn: hup}, syscall.SIGHUP, "ignores SIGHUP"},
		{"no handler, ignored by default", procStatus{}, syscall.SIGWINCH, "the default action ignores it, so nothing would reload"},
		{"no handler, SIGCHLD", procStatus{}, syscall.SIGCHLD, "no SIGCHLD handler and the default action ignores it"},
		{"no handler, SIGURG", procStatus{}, syscall.SIGURG, "no SIGURG handler and the default action ignores it"},
		{"no handler, SIGCONT", procStatus{}, syscall.SIGCONT, "only continues a stopped process"},
		{"handler for SIGWINCH", procStatus{SigCgt: sigBit(syscall.SIGWINCH)}, syscall.SIGWINCH, ""},
		{"no handler, stopping default", procStatus{}, syscall.SIGTSTP, "would stop it"},
		{"handler for another signal", procStatus{SigCgt: sigBit(syscall.SIGUSR1)}, syscall.SIGUSR2, "no SIGUSR2 handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCatches(7, "app", tt.st, tt.sig)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkCatches = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkCatches = %v; want error containing %q", err, tt.wantErr)
			}
		})
	}
}
