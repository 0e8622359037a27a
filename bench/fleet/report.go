package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
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
	fmt.Fprintln(w, "| N | tree | attr cache | interval | ops/s per replica | peak/mean (100 ms) | same if phases were uniform / in lockstep | start peak/mean | CPU ms/min per replica | RssAnon per replica | naive arithmetic ops/s per replica | naive measured ops/s per replica |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		if r.naive {
			continue
		}
		uniform := uniformPeak(r.n, r.interval, len(r.buckets))
		lockstep := min(float64(r.interval/bucketWidth), float64(len(r.buckets)))
		s := shapes[r.tree]
		floor := naiveFloor(s, r.cache) / r.interval.Seconds()
		measured := "—"
		if nr, ok := naive[fmt.Sprintf("%d/%s/%s", r.n, r.tree, r.cache)]; ok {
			measured = fmt.Sprintf("%.0f (peak/mean %.1f, CPU %.0f ms/min)", nr.opsPerSec, nr.peakMean, nr.cpuMsPerMin)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %v | %.1f | %.2f | %.2f / %.0f | %.1f | %.0f | %.1f MiB | %.0f (%.0f×) | %s |\n",
			r.n, r.tree, cacheDesc(r.cache), r.interval, r.opsPerSec, r.peakMean, uniform, lockstep, r.startPeak,
			r.cpuMsPerMin, r.rssAnonKB/1024, floor, floor/r.opsPerSec, measured)
	}
	fmt.Fprintln(w, "\nRequests per scan, by kind (the coefficients of the formula; a scan is an open of the tree's root), scans per replica per interval (1.0: every tick ran, none stretched), the FUSE server's own CPU, and the spread over replicas:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| poller | N | tree | attr cache | "+strings.Join(kindNames[:], " | ")+" | total (w/o other) | scans per replica per interval | warm-up | server CPU | ops per replica in window (min–max) |")
	fmt.Fprintln(w, "|---|---|---|---|"+strings.Repeat("---|", int(nKinds))+"---|---|---|---|---|")
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
		rate := float64(r.scans) / float64(r.n) / (r.window.Seconds() / r.interval.Seconds())
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %.1f | %.2f | %.0f s | %.0f%% of a core | %d–%d |\n",
			who, r.n, r.tree, r.cache, strings.Join(cells, " | "), total, rate, r.warmup.Seconds(), r.serverCPU*100, r.minOps, r.maxOps)
	}
	fmt.Fprintln(w, "\nReplicas that stretched their interval (scans took over a quarter of it) or made no request in the window, and the window's 100 ms buckets by size (percentiles over the mean):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| poller | N | tree | attr cache | stretched | silent in window | p50/mean | p90/mean | p99/mean | max/mean |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		who := "pollreload"
		if r.naive {
			who = "naive"
		}
		p := percentiles(r.buckets, 0.5, 0.9, 0.99, 1)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", who, r.n, r.tree, r.cache, r.stretched, r.silent, p[0], p[1], p[2], p[3])
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

// uniformPeak is the peak/mean a fleet of n replicas would show over nb
// buckets if each polled at its own uniformly random phase, every scan
// landing in one bucket: the noise floor of the peak/mean column (lockstep
// would give interval/100 ms). It is the median of 51 simulated windows.
func uniformPeak(n int, interval time.Duration, nb int) float64 {
	if nb == 0 || n == 0 {
		return 0
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(nb)))
	per := int(interval / bucketWidth)
	if per < 1 {
		per = 1
	}
	var peaks []float64
	for range 51 {
		counts := make([]int, nb)
		total := 0
		for range n {
			for b := rng.IntN(per); b < nb; b += per {
				counts[b]++
				total++
			}
		}
		if total == 0 {
			continue
		}
		peaks = append(peaks, float64(slices.Max(counts))/(float64(total)/float64(nb)))
	}
	if len(peaks) == 0 {
		return 0
	}
	slices.Sort(peaks)
	return peaks[len(peaks)/2]
}

// percentiles returns the given quantiles of buckets, each over their mean.
func percentiles(buckets []int64, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if len(buckets) == 0 {
		return out
	}
	sorted := slices.Clone(buckets)
	slices.Sort(sorted)
	var sum int64
	for _, v := range sorted {
		sum += v
	}
	mean := float64(sum) / float64(len(sorted))
	if mean == 0 {
		return out
	}
	for i, q := range qs {
		j := min(int(q*float64(len(sorted))), len(sorted)-1)
		out[i] = float64(sorted[j]) / mean
	}
	return out
}
