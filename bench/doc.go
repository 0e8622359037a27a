// Package bench holds pollreload's comparative benchmarks: Go benchmarks of
// whole-tree scans through the hasher's public API (cold and steady, on the
// trees compare.sh builds), for `go test -bench` and `-cpuprofile`, and
// compare.sh, which runs the real binary beside xxhsum and find on the same
// data and prints the table kept in bench/README.md.
//
// fleet.sh (with the commands in fleet/ and naive/) measures what many
// replicas cost one file server; TestFleetSmoke runs it in small so that it
// keeps working between full runs.
//
// The package has no code outside its tests.
package bench
