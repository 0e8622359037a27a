// Command ticker is the floor bench/compare.sh measures pollreload's idle
// cost against: a Go program that wakes once per interval and does nothing
// else. Its CPU is the Go runtime's and the kernel's cost of one timer per
// tick; whatever pollreload spends above it is its own.
//
//	ticker -interval 1s
package main

import (
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	interval := flag.Duration("interval", time.Second, "time between ticks")
	flag.Parse()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(*interval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-t.C:
			n++
		case <-stop:
			_ = n
			return
		}
	}
}
