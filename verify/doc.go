// Package verify confirms that the application accepted a delivered reload:
// a reload counts as a success only once the application shows it took the
// new configuration. Package signaler delivers (finds and signals
// processes, calls endpoints); this package judges what the delivery did.
//
// # The interface
//
// A Verifier has two hooks, called by the poll loop for one target:
//
//	Before(ctx)           right before each delivery: record what After
//	                      compares with (a server's workers, the app's
//	                      last reload time). It returns promptly and never
//	                      fails the delivery.
//	After(ctx, Delivery)  once a delivery reached at least one process or
//	                      endpoint: wait (bounded by RELOAD_TIMEOUT) for
//	                      the application's verdict.
//
// After's error is the verdict, in signaler's vocabulary (signaler.ResultOf
// maps it to the reloads_total result label):
//
//   - nil: the application accepted it ("success").
//   - an error wrapping signaler.ErrRejected, normally a
//     *signaler.RejectedError with a bounded, redacted excerpt of what the
//     application said: it refused the configuration ("rejected"); the
//     same content is not delivered again until it changes.
//   - an error wrapping signaler.ErrTargetDied (*signaler.TargetDiedError):
//     the signalled process is gone ("target_died"); delivered again with
//     backoff.
//   - any other error: the verdict is unknown ("error"); After is called
//     again with backoff, without delivering again.
//
// The vocabulary lives in signaler because a delivery can carry a verdict
// itself (an HTTP endpoint answering 400 is a rejection), and signaler must
// not import this package; verify imports signaler, never the reverse.
//
// A Verifier belongs to one target: Before and After are never called at
// the same time for it, and what Before recorded is for that target's next
// After. All runs several verifiers as one; Deliver runs one delivery with
// the hooks around it, for callers without a poll loop.
//
// # The verifiers
//
//   - AliveVerifier: every signalled process still runs, as the same
//     process (PID and start time), a grace (500ms) after the signal.
//   - ChildrenVerifier (RELOAD_VERIFY=children): a master/worker server
//     (nginx, haproxy -W, gunicorn) started a worker that was not there at
//     Before; the same workers at the timeout are a refusal.
//   - MetricVerifier (RELOAD_VERIFY_URL): the application's own
//     *_config_last_reload_success_timestamp_seconds moved past its value
//     at Before, or *_config_last_reload_successful reads 0 (metric.go).
//
// To add one, implement the two methods, keep Before cheap and bounded, put
// every wait in After under its own timeout and ctx, and return the errors
// above; then hand it to poller.Target.Verifier (pollreload's targets.go
// builds each target's verifiers from the configuration).
package verify
