package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests pin down, on Debian 12's packages, the reload contract of
// each application the e2e tests reload: what it does on SIGHUP with a
// good and with a bad configuration. pollreload's verification is built
// on these facts; if a package update changes one, this is where it shows.

// statFields returns the fields of /proc/PID/stat after the command name,
// numbered as in proc(5) from field 3 (the state) on: fields[i] is field
// i+3.
func statFields(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// image returns a process's start time (field 22) and the addresses of its
// code and stack (fields 26 and 28): the first stays across an exec, the
// others move with every exec (address space layout randomisation).
func image(t *testing.T, pid int) (start, code, stack string) {
	f := statFields(t, pid)
	return f[22-3], f[26-3], f[28-3]
}

func TestSSHDReexecsInPlaceAndExitsOnABadConfig(t *testing.T) {
	s := StartSSHD(t, "one")
	pid := s.Proc.PID()
	start, code, stack := image(t, pid)

	s.Write(t, "two", "")
	if err := s.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error {
		got, err := s.Version(context.Background())
		if err == nil && !strings.HasSuffix(got, " two") {
			err = fmt.Errorf("sshd says %q; want the addendum two", got)
		}
		return err
	})
	start2, code2, stack2 := image(t, pid)
	if s.Proc.Exited() || start2 != start {
		t.Fatalf("sshd %d: start time %s -> %s; want the same process", pid, start, start2)
	}
	if code2 == code || stack2 == stack {
		t.Errorf("sshd %d: code at %s -> %s, stack at %s -> %s; want both moved by the re-exec", pid, code, code2, stack, stack2)
	}
	t.Logf("valid: sshd pid %d start %s kept; code %s -> %s, stack %s -> %s (re-executed in place)", pid, start, code, code2, stack, stack2)

	s.Write(t, "three", "NoSuchOption yes")
	if err := s.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := s.Proc.Wait(30 * time.Second); err == nil {
		t.Errorf("sshd exit = nil; want an error status")
	}
	if !strings.Contains(s.Proc.Output(), "Bad configuration option: NoSuchOption") {
		t.Errorf("sshd's output lacks the bad option:\n%s", s.Proc.Output())
	}
	t.Logf("invalid: sshd exited (%v) after SIGHUP", s.Proc.Wait(0))
}

func TestGunicornMasterExitsOnABadConfig(t *testing.T) {
	g := StartGunicorn(t, "one")
	g.Write(t, "two", "")
	if err := g.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.WaitServes(t, "two")

	g.Write(t, "three", `workers = "many"`)
	if err := g.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := g.Proc.Wait(30 * time.Second); err == nil {
		t.Errorf("gunicorn exit = nil; want an error status")
	}
	t.Logf("invalid: the gunicorn master exited (%v) after SIGHUP", g.Proc.Wait(0))
}

func TestPgbouncerLogsAFailedLoadAndFallsBackToDefaults(t *testing.T) {
	p := StartPgbouncer(t, "100")
	p.Write(t, "123", "")
	if err := p.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.WaitSetting(t, "max_client_conn", "123")

	p.Write(t, "notanumber", "")
	if err := p.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error {
		b, err := os.ReadFile(p.Log)
		if err == nil && !strings.Contains(string(b), "WARNING config file loading failed") {
			err = fmt.Errorf("pgbouncer's log lacks the failure:\n%s", b)
		}
		return err
	})
	// The bad value did not keep the old one (123): the setting fell back
	// to its default, 100. (Settings on lines after the bad one do too: an
	// admin_users there leaves the console refusing the admin.)
	p.WaitSetting(t, "max_client_conn", "100")
	if p.Proc.Exited() {
		t.Fatal("pgbouncer exited")
	}

	p.Write(t, "150", "")
	if err := p.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.WaitSetting(t, "max_client_conn", "150")
}

func TestMariaDBDoesNotReadMyCnfOnSIGHUP(t *testing.T) {
	m := StartMariaDB(t, 100)
	m.Write(t, 123)
	if err := m.Proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// SIGHUP makes mariadbd write its status to the error log (the
	// flush); then max_connections is read back.
	WaitFor(t, 30*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(m.PIDFile), "error.log"))
		if err == nil && !strings.Contains(string(b), "Status information:") {
			err = fmt.Errorf("mariadbd has not handled SIGHUP yet")
		}
		return err
	})
	got, err := m.MaxConnections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != 100 {
		t.Errorf("max_connections after SIGHUP = %d; want 100: mariadbd does not re-read my.cnf", got)
	}
	if m.Proc.Exited() {
		t.Fatal("mariadbd exited")
	}
	t.Logf("mariadbd: my.cnf says 123, SIGHUP handled (status written), @@max_connections = %d", got)
}
