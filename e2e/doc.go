// Package e2e holds pollreload's end-to-end tests: the real pollreload
// binary, built with -race and configured only through environment
// variables, reloads real software (nginx, pgbouncer, Prometheus) and a
// signal-catching test application, on ordinary directories, kubelet-style
// volumes and FUSE mounts that inotify cannot watch.
//
// The package has no build tag: it runs with everything else,
//
//	go test -race ./...
//	go test -race -v ./e2e/            # just these, with the figures they print
//	go test -race -short ./e2e/        # a smaller soak
//
// Every test that needs an external program skips when it is missing, saying
// which Debian package provides it; with REQUIRE_TOOLS=1 (as in CI) it fails
// instead. .ci/deps.sh installs them all. The tests run as root (nginx,
// pgbouncer and sshd drop privileges themselves; FUSE mounts need
// /dev/fuse), talk only to 127.0.0.1, and leave no process or mount behind,
// also when they fail.
//
// Other knobs, all environment variables:
//
//	TESTENV_POLLRELOAD_BINARY=/path/to/pollreload  test a prebuilt binary
//	E2E_SOAK_SEED=N                                 replay a soak's sequence (its log prints N)
package e2e
