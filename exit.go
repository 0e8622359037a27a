package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/pollreload/pollreload/config"
)

// This file is how pollreload ends: the exit codes, and the errors that
// carry them out of run.

// exitError carries an exit code other than 1 out of run.
type exitError struct {
	code int
	err  error // nil: nothing to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode prints err, if any, and maps it to the process exit code.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	code := 1
	var (
		ee *exitError
		ce *config.Error
	)
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code
		}
	case errors.Is(err, errUsage), errors.As(err, &ce):
		code = 2 // the command line, or a setting (a drop-in flag's)
	}
	fmt.Fprintln(stderr, "pollreload:", err)
	return code
}

// errUsage is the command line's error: config's, for the flags, and
// run's own.
var errUsage = config.ErrUsage

// usageErr is an error of the command line, exit code 2.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}
