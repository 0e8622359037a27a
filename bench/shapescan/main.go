// Command shapescan scans one root a few times with the hasher's API and no
// limits, and prints each scan's wall time, its result, and the process's
// peak resident memory. bench/shape.sh runs it, built from two trees, on
// trees whose shape used to make the cost explode. It uses only the API
// both have (hasher.New, Scan), so the same source builds on either.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pollreload/pollreload/hasher"
)

func main() {
	n := flag.Int("n", 3, "scans")
	flag.Parse()
	root := flag.Arg(0)
	h := hasher.New(hasher.Options{})
	for i := range *n {
		start := time.Now()
		snap, err := h.Scan(context.Background(), root)
		d := time.Since(start)
		if err != nil {
			fmt.Printf("scan %d: %v: %v\n", i+1, d.Round(time.Millisecond), err)
			continue
		}
		fmt.Printf("scan %d: %8.1f ms  %d files  %d errors\n", i+1, float64(d.Microseconds())/1000, len(snap.Files), len(snap.Errors))
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Println("peak RSS:", strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")))
		}
	}
}
