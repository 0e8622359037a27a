package signaler

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
)

// This file refuses to signal applications that do not reload their
// configuration on any signal: a signal to them would be counted as a
// reload although nothing was re-read.

// notReloading maps the base name of an executable to what it does with a
// signal instead of reloading, and what to do instead.
var notReloading = map[string]string{
	"mysqld":   mysqlWhy,
	"mariadbd": mysqlWhy,
}

const mysqlWhy = "MariaDB and MySQL never re-read my.cnf on a signal (SIGHUP only flushes logs and caches), so no reload could take effect; restart the server when its configuration changes (in Kubernetes, roll the pod: a checksum annotation, or a controller such as stakater/Reloader), or change dynamic variables with SET GLOBAL through a client such as mariadb or mysql"

// NotReloads returns why the program run from exe (a path or a base name)
// does not reload its configuration on a signal, and what to do instead;
// "" when nothing is known against it.
func NotReloads(exe string) string {
	return notReloading[filepath.Base(strings.TrimSuffix(exe, " (deleted)"))]
}

// NotReloadingError reports a target that was not signalled because its
// program does not reload its configuration on any signal (mysqld). It is
// an error of its own (result "error"): waiting would not help, and a
// signal would be counted as a reload that never happened.
type NotReloadingError struct {
	PID    int
	Name   string
	Exe    string
	Signal syscall.Signal
	Why    string
}

func (e *NotReloadingError) Error() string {
	return fmt.Sprintf("pid %d (%s, %s) does not reload its configuration on %s or any other signal: %s",
		e.PID, e.Name, e.Exe, signalName(e.Signal), e.Why)
}

// checkReloads returns a *NotReloadingError when pid's executable is one
// that does not reload on a signal.
func checkReloads(procDir string, pid int, name string, sig syscall.Signal) error {
	exe := readExe(procDir, pid)
	if exe == "" {
		return nil
	}
	if why := NotReloads(exe); why != "" {
		return &NotReloadingError{PID: pid, Name: name, Exe: exe, Signal: sig, Why: why}
	}
	return nil
}
