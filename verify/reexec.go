package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file holds ExecVerifier (RELOAD_VERIFY=exec), for servers that
// reload by re-executing themselves in place: sshd on SIGHUP, the uwsgi
// master on SIGHUP, the haproxy master (-W) on SIGUSR2. They keep their PID
// and start time, so "still alive" says nothing about the reload, and
// sshd's children are sessions, not workers. What does change is the
// memory image: a new exec maps code and stack at new random addresses
// (address space layout randomisation), which /proc/PID/stat shows in
// fields 26 (startcode) and 28 (startstack).

// ErrLayoutHidden is wrapped by the error of an ExecVerifier that cannot
// see a target's memory layout: the kernel shows startcode and startstack
// only to a reader allowed to ptrace-read the process (the same user, and
// no capability the target has that the reader lacks, or CAP_SYS_PTRACE).
var ErrLayoutHidden = errors.New("the target's memory layout is hidden from pollreload")

// ExecOptions configures an ExecVerifier.
type ExecOptions struct {
	// Timeout bounds the wait for the re-exec (RELOAD_TIMEOUT); zero
	// means 5s.
	Timeout time.Duration
	// Interval is the time between two looks; zero means 50ms.
	Interval time.Duration
	// Grace is how long the re-executed process must then keep running,
	// as sshd exits once its new image finds the configuration bad; zero
	// means 500ms.
	Grace time.Duration
	// Signal names the signal in errors; zero means SIGHUP.
	Signal syscall.Signal
	// ProcDir is where procfs is mounted; empty means /proc.
	ProcDir string
}

// ExecVerifier confirms the reload of a server that re-executes itself in
// place: the signalled process shows a new memory image (it ran exec) and
// still runs a grace later. No exec within the timeout is an unknown
// verdict; the process gone is target_died.
type ExecVerifier struct {
	opts ExecOptions

	mu       sync.Mutex
	before   map[int]procImage
	prepared bool
}

// procImage identifies one exec of one process.
type procImage struct {
	start       uint64 // start time: the process
	code, stack uint64 // where its code and stack are mapped: the exec
}

// hidden reports whether the kernel withheld the layout: it shows 1, 1 and
// 0 for startcode, endcode and startstack to a reader without the right.
func (p procImage) hidden() bool { return p.code <= 1 && p.stack == 0 }

// NewExecVerifier returns an ExecVerifier.
func NewExecVerifier(opts ExecOptions) *ExecVerifier {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 50 * time.Millisecond
	}
	if opts.Grace <= 0 {
		opts.Grace = 500 * time.Millisecond
	}
	if opts.Signal == 0 {
		opts.Signal = syscall.SIGHUP
	}
	if opts.ProcDir == "" {
		opts.ProcDir = "/proc"
	}
	return &ExecVerifier{opts: opts}
}

// Before records the image of every process: the targets are not known
// until the delivery. It reads /proc only.
func (e *ExecVerifier) Before(context.Context) {
	images := map[int]procImage{}
	if pids, err := signaler.ListPIDs(e.opts.ProcDir); err == nil {
		for _, pid := range pids {
			if im, err := readImage(e.opts.ProcDir, pid); err == nil {
				images[pid] = im
			}
		}
	}
	e.mu.Lock()
	e.before, e.prepared = images, true
	e.mu.Unlock()
}

// After waits for each signalled process to re-execute and to keep running
// a grace after it.
func (e *ExecVerifier) After(ctx context.Context, d Delivery) error {
	e.mu.Lock()
	before, prepared := e.before, e.prepared
	e.mu.Unlock()
	if !prepared {
		return errors.New("verify exec: no image of the target before the delivery")
	}
	for _, t := range d.Targets {
		if t.PID <= 0 {
			continue
		}
		old, ok := before[t.PID]
		if !ok || (t.StartTicks != 0 && old.start != t.StartTicks) {
			return fmt.Errorf("verify exec: pid %d (%s) was not running before the delivery", t.PID, t.Name)
		}
		if err := e.wait(ctx, d, t, old); err != nil {
			return err
		}
	}
	return nil
}

func (e *ExecVerifier) wait(ctx context.Context, d Delivery, t signaler.Target, old procImage) error {
	sig := signaler.SignalName(e.opts.Signal)
	if old.hidden() {
		return fmt.Errorf("verify exec: cannot see whether pid %d (%s) re-executed: %w (/proc/%d/stat shows its code and stack addresses only to a reader allowed to trace it); run pollreload as the app's user with no fewer capabilities, or add CAP_SYS_PTRACE",
			t.PID, t.Name, ErrLayoutHidden, t.PID)
	}
	alive := NewAliveVerifier(AliveOptions{Signal: e.opts.Signal, ProcDir: e.opts.ProcDir})
	deadline := d.At.Add(e.opts.Timeout)
	var execAt time.Time
	for {
		if err := alive.same(t); err != nil {
			died := err.(*signaler.TargetDiedError)
			died.After = time.Since(d.At)
			return died
		}
		now, err := readImage(e.opts.ProcDir, t.PID)
		switch {
		case err != nil && signaler.IsGone(err):
			continue // alive.same says so on the next turn
		case err != nil:
			return fmt.Errorf("verify exec: %w", err)
		}
		if execAt.IsZero() && (now.code != old.code || now.stack != old.stack) {
			execAt = time.Now()
		}
		switch {
		case !execAt.IsZero() && !time.Now().Before(execAt.Add(e.opts.Grace)):
			return nil // re-executed, and still runs a grace later
		case execAt.IsZero() && !time.Now().Before(deadline):
			return fmt.Errorf("verify exec: pid %d (%s) did not re-execute itself within %s of %s (its code and stack addresses did not move): it did not act on the signal, or it does not reload by re-executing",
				t.PID, t.Name, e.opts.Timeout, sig)
		}
		if err := sleepUntil(ctx, time.Now().Add(e.opts.Interval)); err != nil {
			return err
		}
	}
}

// readImage reads a process's start time and the addresses of its code and
// stack from /proc/PID/stat (fields 22, 26 and 28).
func readImage(procDir string, pid int) (procImage, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procImage{}, err
	}
	s := string(b)
	// The command name is in parentheses and may hold anything: fields
	// are counted after its last ')'. fields[0] is field 3.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procImage{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 28-2 {
		return procImage{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var im procImage
	for _, x := range []struct {
		field int
		dst   *uint64
	}{{22, &im.start}, {26, &im.code}, {28, &im.stack}} {
		v, err := strconv.ParseUint(f[x.field-3], 10, 64)
		if err != nil {
			return procImage{}, fmt.Errorf("parse /proc/%d/stat field %d: %w", pid, x.field, err)
		}
		*x.dst = v
	}
	return im, nil
}

// Describe says what the check does; the caller names the setting that
// chose it.
func (e *ExecVerifier) Describe() string {
	return fmt.Sprintf("the process must re-execute itself (its code and stack addresses in /proc/PID/stat move) and still run %s later, within %s of %s",
		e.opts.Grace, e.opts.Timeout, signaler.SignalName(e.opts.Signal))
}
