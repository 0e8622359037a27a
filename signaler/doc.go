// Package signaler delivers reloads to the application: a signal to processes
// found in /proc by name or PID file, an HTTP request, or a signal to a child
// that pollreload started itself (wrapper mode).
//
// Every target type implements Reloader. The poll loop calls Reload with the
// time the change was first seen; a non-nil error means the reload is still
// pending and the caller retries with backoff.
package signaler
