package signaler

import "errors"

// This file is the result vocabulary shared by signaler, poller and metrics:
// what one delivery attempt to one target came to. Its String is the
// reloads_total "result" label; its predicates tell the poll loop what to do
// next, so no package compares label strings.

// Result is the outcome of one delivery attempt to one target.
type Result uint8

// The results, in the order metrics pre-creates their label values.
const (
	// ResultSuccess: the target was told (and, where a verifier runs, took
	// the new configuration).
	ResultSuccess Result = iota
	// ResultUpToDate: the target started after the change and read it at
	// start; it was not signalled.
	ResultUpToDate
	// ResultNoTarget: no process matched, or the PID file names none yet.
	ResultNoTarget
	// ResultNotCatching: the target has no handler for the signal yet.
	ResultNotCatching
	// ResultPermission: the kernel refused the signal (EPERM).
	ResultPermission
	// ResultError: any other failure (an HTTP endpoint down, a 5xx).
	ResultError
	// ResultRejected: the application answered that it refused the new
	// configuration. Sending the same bytes again would be refused again, so
	// it is not retried until the content changes.
	ResultRejected
	// ResultTargetDied: the target was signalled and then died.
	ResultTargetDied
	// ResultCheckError: the check before the delivery
	// (RELOAD_CHECK_COMMAND) gave no verdict: it could not start or ran
	// past its timeout. Nothing was delivered; retried with backoff.
	ResultCheckError

	numResults
)

var resultNames = [numResults]string{
	ResultSuccess:     "success",
	ResultUpToDate:    "up_to_date",
	ResultNoTarget:    "no_target",
	ResultNotCatching: "not_catching",
	ResultPermission:  "permission",
	ResultError:       "error",
	ResultRejected:    "rejected",
	ResultTargetDied:  "target_died",
	ResultCheckError:  "check_error",
}

// String returns the metric label value, such as "no_target".
func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "error"
}

// Results lists every Result, for pre-creating metric label values.
func Results() []Result {
	out := make([]Result, numResults)
	for i := range out {
		out[i] = Result(i)
	}
	return out
}

// Delivered reports whether the target holds the change: success or
// up_to_date.
func (r Result) Delivered() bool { return r == ResultSuccess || r == ResultUpToDate }

// Local reports whether the attempt failed on a local look at /proc (no
// target yet, no handler yet): cheap to repeat, so it is retried on every
// tick rather than with backoff, and it is a wait, not a failure.
func (r Result) Local() bool { return r == ResultNoTarget || r == ResultNotCatching }

// Retryable reports whether the same change should be attempted again.
// Everything but a delivery and a rejection is.
func (r Result) Retryable() bool { return !r.Delivered() && r != ResultRejected }

// Failed reports whether the attempt counts against
// pollreload_last_reload_successful: a refused signal, a failed request, a
// rejected configuration or a dead target. Waiting for a target is not.
func (r Result) Failed() bool { return !r.Delivered() && !r.Local() }

// ErrRejected is wrapped by errors that say the application refused the new
// configuration (a verifier's finding, or an HTTP answer that is not a
// transient failure). ResultOf maps it to ResultRejected.
var ErrRejected = errors.New("the application rejected the new configuration")

// ErrTargetDied is wrapped by errors that say the target died after it was
// signalled. ResultOf maps it to ResultTargetDied.
var ErrTargetDied = errors.New("the target died after the reload")

// ErrCheckFailed is wrapped by errors that say the check before the
// delivery gave no verdict (verify.CheckError). ResultOf maps it to
// ResultCheckError.
var ErrCheckFailed = errors.New("the check command gave no verdict")

// ResultOf maps a Reload (or verification) error to its Result. A nil error
// is ResultSuccess.
func ResultOf(err error) Result {
	var perm *PermissionError
	switch {
	case err == nil:
		return ResultSuccess
	case errors.Is(err, ErrRejected):
		return ResultRejected
	case errors.Is(err, ErrTargetDied):
		return ResultTargetDied
	case errors.Is(err, ErrCheckFailed):
		return ResultCheckError
	case errors.As(err, &perm):
		return ResultPermission
	case errors.Is(err, ErrNotCatching):
		return ResultNotCatching
	case errors.Is(err, ErrNoTarget):
		return ResultNoTarget
	default:
		return ResultError
	}
}
