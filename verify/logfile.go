package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/internal/filetype"
	"github.com/pollreload/pollreload/signaler"
)

// This file holds LogVerifier (RELOAD_VERIFY_LOG): the verdict of an
// application whose only word on a reload is a line in its log, such as
// pgbouncer 1.18's "config file loading failed".

// Bounds of one look at the log: a look reads at most logReadMax bytes (the
// rest is read by the next look), and matches at most logLineMax bytes of a
// line.
const (
	logReadMax = 256 << 10
	logLineMax = 8 << 10
)

// LogOptions configures a LogVerifier.
type LogOptions struct {
	// Path is the log file the application writes.
	Path string
	// Success and Failure match a line that says the reload was accepted or
	// refused. Both are required.
	Success, Failure *regexp.Regexp
	// Timeout bounds the wait for either line (RELOAD_TIMEOUT); zero means
	// 5s.
	Timeout time.Duration
	// Interval is the time between two looks at the file; zero means
	// 100ms. A success line is confirmed by one more look an interval
	// later with no failure line, as an application may log that it
	// started reloading before it logs what went wrong.
	Interval time.Duration
}

// LogVerifier reads the lines an application appends to its log after a
// delivery (from the file's size at Before): a line matching Failure is a
// rejection with that line as the answer, a line matching Success is an
// acceptance, neither is "not yet". A log rotated (another inode at the
// path) or truncated since is read from its start; a missing file is
// waited for. Only regular files are read, opened without blocking, so a
// FIFO at the path cannot hang the loop.
type LogVerifier struct {
	opts LogOptions

	mu      sync.Mutex // Before and After run on the loop's goroutines
	pos     logPos     // where the next look starts
	partial []byte     // the start of a line whose end is not written yet
	success string     // a success line seen, waiting for its confirmation
}

// logPos is a position in one file: its identity (device and inode; zero
// when the file did not exist) and an offset.
type logPos struct {
	dev, ino uint64
	off      int64
}

// NewLogVerifier returns a LogVerifier. It does not touch the file.
func NewLogVerifier(opts LogOptions) (*LogVerifier, error) {
	if opts.Path == "" || opts.Success == nil || opts.Failure == nil {
		return nil, errors.New("verify log: a path and both a success and a failure pattern are needed")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	return &LogVerifier{opts: opts}, nil
}

// Before records the log's identity and size: only lines written after
// this count.
func (l *LogVerifier) Before(context.Context) {
	var pos logPos
	if fi, err := os.Stat(l.opts.Path); err == nil && fi.Mode().IsRegular() {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			pos = logPos{dev: st.Dev, ino: st.Ino, off: fi.Size()}
		}
	}
	l.mu.Lock()
	l.pos, l.partial, l.success = pos, nil, ""
	l.mu.Unlock()
}

// After looks at the new lines every Interval until one decides, or the
// timeout passes. Called again after an unknown verdict, it goes on from
// where it stopped.
func (l *LogVerifier) After(ctx context.Context, d Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	deadline := d.At.Add(l.opts.Timeout)
	if now := time.Now(); deadline.Before(now) {
		deadline = now // a retry: one more look
	}
	for {
		hadSuccess := l.success != ""
		err := l.look()
		switch {
		case errors.Is(err, signaler.ErrRejected):
			return err
		case err != nil:
			return err
		case hadSuccess && l.success != "":
			return nil // confirmed by a look with no failure line
		}
		next := time.Now().Add(l.opts.Interval)
		if l.success == "" && next.After(deadline) {
			return fmt.Errorf("verify log: no line of %s matched %q or %q within %s of the delivery",
				l.opts.Path, l.opts.Success, l.opts.Failure, l.opts.Timeout)
		}
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
	}
}

// look reads what was appended since the last look (at most logReadMax
// bytes) and matches its complete lines: a failure line returns a
// *RejectedError, a success line is kept in l.success.
func (l *LogVerifier) look() error {
	// Stat first, so a device is never opened; open without blocking, so a
	// FIFO swapped in between cannot hang; fstat again to be sure.
	if fi, err := os.Stat(l.opts.Path); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("verify log: %s is a %s, not a regular file: name the file the application writes its log to", l.opts.Path, filetype.Name(fi.Mode()))
	}
	f, err := os.OpenFile(l.opts.Path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not written yet, or being rotated
	}
	if err != nil {
		return fmt.Errorf("verify log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("verify log: %s is a %s, not a regular file: name the file the application writes its log to", l.opts.Path, filetype.Name(fi.Mode()))
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st == nil {
		return fmt.Errorf("verify log: %s: no inode", l.opts.Path)
	}
	if st.Dev != l.pos.dev || st.Ino != l.pos.ino || fi.Size() < l.pos.off {
		// Rotated (a new file at the path) or truncated: its lines are all
		// new. What the old file got after the last look is lost; the
		// application's next line is in the new one.
		l.pos, l.partial = logPos{dev: st.Dev, ino: st.Ino}, nil
	}
	n := min(fi.Size()-l.pos.off, logReadMax)
	if n <= 0 {
		return nil
	}
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, l.pos.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("verify log: read %s: %w", l.opts.Path, err)
	}
	l.pos.off += int64(got)
	data := append(l.partial, buf[:got]...)
	l.partial = nil
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if err := l.match(data[:i]); err != nil {
			return err
		}
		data = data[i+1:]
	}
	// Keep the start of an unfinished line, bounded.
	l.partial = bytes.Clone(data[:min(len(data), logLineMax)])
	return nil
}

// match judges one line.
func (l *LogVerifier) match(line []byte) error {
	line = line[:min(len(line), logLineMax)]
	switch {
	case l.opts.Failure.Match(line):
		return &signaler.RejectedError{Target: l.opts.Path, Answer: signaler.Excerpt(line, nil)}
	case l.success == "" && l.opts.Success.Match(line):
		l.success = signaler.Excerpt(line, nil)
	}
	return nil
}

// Path returns the log file it reads.
func (l *LogVerifier) Path() string { return l.opts.Path }

// Describe says what the check does, starting with the file; the caller
// names the setting that chose it.
func (l *LogVerifier) Describe() string {
	return fmt.Sprintf("%s from its size at the delivery: success %q, failure %q, within %s",
		l.opts.Path, l.opts.Success, l.opts.Failure, l.opts.Timeout)
}
