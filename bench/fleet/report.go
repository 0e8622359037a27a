package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// naiveFloor is the arithmetic of a poller that reads every file on every
// tick (prometheus-config-reloader's method), per tick: each file it reads
// costs at least an open and a read, and, without attribute caching, a
// lookup of its name; each directory of the walk an open and a listing (two
// READDIRs, the second finding the end). A kubelet volume's files are read
// twice, once in the version directory and once through the visible links,
// since such a walk does not know the layout. It is a floor: the real naive
// poller (bench/naive) also stats every path twice and resolves every path
// from the top, one lookup per component.
func naiveFloor(s shape, cache string) float64 {
	perFile := 3
	if cache == "on" {
		perFile = 2
	}
	return float64(s.reads()*perFile + s.dirs*3)
}

// reads is how many files a naive walk opens and reads per tick.
func (s shape) reads() int {
	if s.links > 0 {
		return s.files + s.links - 1 // every visible key link, not ..data
	}
	return s.files
}

func report(w io.Writer, o *options, results []result, began time.Time, load0 string) {
	fmt.Fprintf(w, "\nmachine: %d cores, %s, load average at start %s, at end %s; pollreload %s; total run time %s\n",
		runtime.NumCPU(), kernel(), load0, loadavg(), o.pollreload, time.Since(began).Round(time.Second))
	fmt.Fprintf(w, "one counting FUSE mount per replica; warm-up %v + one interval after a simultaneous start, then a %v window\n\n", o.warmup, o.window)
	naive := map[string]result{}
	for _, r := range results {
		if r.naive {
			naive[fmt.Sprintf("%d/%s/%s", r.n, r.tree, r.cache)] = r
		}
	}
	fmt.Fprintln(w, "| N | tree | attr cache | interval | ops/s per replica | peak/mean (100 ms) | start peak/mean | CPU ms/min per replica | RssAnon per replica | naive arithmetic ops/s per replica | naive measured ops/s per replica |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.naive {
			continue
		}
		s := shapes[r.tree]
		floor := naiveFloor(s, r.cache) / r.interval.Seconds()
		measured := "—"
		if nr, ok := naive[fmt.Sprintf("%d/%s/%s", r.n, r.tree, r.cache)]; ok {
			measured = fmt.Sprintf("%.0f (peak/mean %.1f, CPU %.0f ms/min)", nr.opsPerSec, nr.peakMean, nr.cpuMsPerMin)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %v | %.1f | %.2f | %.1f | %.0f | %.1f MiB | %.0f (%.0f×) | %s |\n",
			r.n, r.tree, cacheDesc(r.cache), r.interval, r.opsPerSec, r.peakMean, r.startPeak,
			r.cpuMsPerMin, r.rssAnonKB/1024, floor, floor/r.opsPerSec, measured)
	}
	fmt.Fprintln(w, "\nRequests per replica per tick, by kind (the coefficients of the formula), the FUSE server's own CPU, and the spread over replicas:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| poller | N | tree | attr cache | "+strings.Join(kindNames[:], " | ")+" | total (w/o other) | server CPU | ops per replica in window (min–max) |")
	fmt.Fprintln(w, "|---|---|---|---|"+strings.Repeat("---|", int(nKinds))+"---|---|---|")
	for _, r := range results {
		who := "pollreload"
		if r.naive {
			who = "naive"
		}
		var cells []string
		var total float64
		for k := range nKinds {
			cells = append(cells, fmt.Sprintf("%.1f", r.perTick[k]))
			if k != kOther {
				total += r.perTick[k]
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.1f | %.0f%% of a core | %d–%d |\n",
			who, r.n, r.tree, r.cache, strings.Join(cells, " | "), total, r.serverCPU*100, r.minOps, r.maxOps)
	}
	fmt.Fprintln(w, "\ntrees:")
	for _, t := range o.trees {
		fmt.Fprintf(w, "  %s: %s (interval %v)\n", t, shapes[t].desc, o.intervals[t])
	}
}

func cacheDesc(c string) string {
	if c == "on" {
		return "1 s"
	}
	return "off (0)"
}

func kernel() string {
	b, err := readFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(b)
}
