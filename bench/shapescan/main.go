// Command shapescan scans one root a few times with the hasher's API and no
// limits, and prints each scan's wall time, its result, and the process's
// peak resident memory. It prints CPU time (user + system, getrusage) beside
// wall time: on a loaded machine only the first says what the scan cost. bench/shape.sh runs it, built from two trees, on
// trees whose shape used to make the cost explode. It uses only the API
// both have (hasher.New, Scan), so the same source builds on either.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/hasher"
)

func main() {
	n := flag.Int("n", 3, "scans")
	flag.Parse()
	root := flag.Arg(0)
	h := hasher.New(hasher.Options{})
	for i := range *n {
		start, cpu0 := time.Now(), cpuTime()
		snap, err := h.Scan(context.Background(), root)
		d, cpu := time.Since(start), cpuTime()-cpu0
		if err != nil {
			fmt.Printf("scan %d: %v: %v\n", i+1, d.Round(time.Millisecond), err)
			continue
		}
		fmt.Printf("scan %d: cpu %8.1f ms  wall %8.1f ms  %d files  %d errors\n", i+1,
			float64(cpu.Microseconds())/1000, float64(d.Microseconds())/1000, len(snap.Files), len(snap.Errors))
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println("peak RSS:", strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")))
		}
	}
}

// cpuTime returns the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
