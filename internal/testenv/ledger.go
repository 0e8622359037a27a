package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ledgerEnv names the directory where Spawn and MountFUSE note what they
// start, so that Main can prove after all tests, including failed ones, that
// nothing was left behind.
const ledgerEnv = "TESTENV_LEDGER"

// note appends line to the ledger file name, if Main keeps a ledger. One
// write per line: O_APPEND keeps lines of parallel tests whole.
func note(name, line string) {
	dir := os.Getenv(ledgerEnv)
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line + "\n")
}

// leftovers lists the process groups and mounts in the ledger at dir that
// still exist, removes them (SIGKILL, lazy unmount) and describes each.
func leftovers(dir string) []string {
	var found []string
	for _, mp := range ledgerLines(dir, "mounts") {
		if ok, _ := Mounted(mp); ok {
			found = append(found, "mount "+mp)
			Unmount(mp)
		}
	}
	for _, line := range ledgerLines(dir, "pgids") {
		pgid, err := strconv.Atoi(line)
		if err != nil {
			continue
		}
		if pids := groupMembers(pgid); len(pids) > 0 {
			found = append(found, fmt.Sprintf("process group %d: %v", pgid, pids))
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	return found
}

func ledgerLines(dir, name string) []string {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// groupMembers returns the live (non-zombie) processes of process group
// pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if errors.Is(err, fs.ErrNotExist) || err != nil {
			continue
		}
		// Fields after the parenthesised comm: state, ppid, pgrp, ...
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}
