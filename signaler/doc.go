// Package signaler delivers reloads to the application: a signal to processes
// found in /proc by name or PID file, an HTTP request, or a signal to a child
// that pollreload started itself (wrapper mode).
//
// Every target type implements Reloader. The poll loop calls Reload with the
// time the change was first seen; a non-nil error means the reload is still
// pending and the caller retries with backoff. ResultOf turns such an error
// into a Result, whose String is the reloads_total label and whose
// predicates (Delivered, Local, Retryable, Failed) tell the caller what to do
// next. A Process is a PartialReloader: its Outcome lists each process's
// fate, and ReloadExcept skips the processes a change already reached.
//
// Build a Reloader with NewProcess (PROCESS_NAME or PID_FILE), NewHTTP
// (RELOAD_URL) or StartChild (`pollreload -- CMD`). Process.Inspect backs
// `pollreload check`.
//
// The rules a signal obeys, and where they live:
//
//   - procfs.go parses /proc: stat (to the last ')', as names may hold
//     spaces and parentheses), status (UID, SigCgt, SigIgn), cmdline, exe.
//   - lookup.go matches names against argv[0]'s base name, the executable's
//     base name and, for names of at most 15 bytes, comm (the kernel cuts it
//     there); a name with a slash is an absolute path, matched against
//     argv[0] and the executable's path. It never picks PID 1, pollreload
//     itself, zombies (but names them when nothing else matched) or kernel
//     threads; policies roots, all and oldest.
//   - pidfile.go resolves PID_FILE, read again on every reload: a regular
//     file only, opened without blocking, its first line; it refuses a PID
//     whose process started after the file was written (reused PID).
//   - safety.go refuses to send a signal the target does not catch when its
//     default action would terminate or stop it (RELOAD_FORCE overrides).
//   - deliver.go sends through a pidfd after checking the start time seen at
//     lookup, so a reused PID is never signalled; kill(2) with the same check
//     where pidfd is unavailable.
//   - process.go ties these together; a target that started after the change
//     is reported up to date, not signalled; EPERM becomes a PermissionError
//     naming both UIDs.
//   - errors.go holds the structured errors (PermissionError,
//     NotCatchingError, PIDFileError, NoTargetError in lookup.go): they say
//     what was found, and the caller adds how to fix it in its deployment
//     (pollreload's config package names the variables and pod-spec fields where the error is shown).
//   - http.go calls RELOAD_URL; redact.go keeps its secrets (userinfo, query
//     values) out of logs, errors, check and metrics: use RedactURL to show
//     a URL anywhere.
//     httpclient.go builds its client (and the verifier's) from
//     prometheus/common's config.HTTPClientConfig: bearer token or basic
//     auth from files re-read on every request, CA, mTLS, extra headers.
//   - verdict.go holds the application's verdicts: RejectedError (it
//     refused the configuration: a non-2xx answer other than 429, 502, 503
//     and 504, carrying a bounded, redacted excerpt) and TargetDiedError.
//     Package verify, which confirms a delivery after it (alive, children,
//     the app's own metrics), returns the same errors; export.go gives it
//     the few /proc facts and the excerpt it needs.
//   - label.go names targets for the bounded `target` metric label.
//   - result.go is the result vocabulary shared with poller and metrics.
//   - child.go is wrapper mode: start the child in its own process group
//     with a parent-death signal, reload it, forward signals, reap it.
//   - terminal.go gives the child the terminal's foreground and follows its
//     job control (Ctrl-Z, fg).
//   - reap.go reaps the orphans pollreload adopts as subreaper or PID 1,
//     without taking the child's exit status from os/exec.
//
// A Go program catches SIGHUP from its first instruction (the runtime
// installs a handler that exits unless signal.Notify asked for it), so the
// safety check cannot protect a Go application that does not handle SIGHUP.
package signaler
