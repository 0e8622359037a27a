// Package bench holds pollreload's comparative benchmarks: Go benchmarks of
// whole-tree scans through the hasher's public API (cold and steady, on the
// trees compare.sh builds), for `go test -bench` and `-cpuprofile`, and
// compare.sh, which runs the real binary beside xxhsum and find on the same
// data and prints the table kept in bench/README.md.
//
// The package has no code outside its tests.
package bench
