// Command fleet measures what a fleet of pollreload replicas costs the file
// server they all poll. It serves one backing tree through FUSE mounts that
// count every request the kernel sends (lookup, getattr, open, read,
// readdir, readlink) per 100 ms, one mount per replica (each node of a fleet
// has its own client and attribute cache), starts N real pollreload
// processes at once, as a rollout does, and reports per configuration:
// requests per second per replica, the busiest 100 ms against the mean
// (replicas polling in lockstep show as a high ratio), CPU per replica per
// minute (utime+stime from /proc/PID/stat) and anonymous memory per replica
// (RssAnon from /proc/PID/status), beside the arithmetic of a poller that
// reads every file on every tick and, where asked, a real one (bench/naive).
//
// bench/fleet.sh builds the binaries and runs it; see bench/README.md.
//
//	fleet -pollreload bin/pollreload -naive bin/naive -replicas 50,100,200
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	pollreload, naive string
	replicas          []int
	trees             []string
	caches            []string
	intervals         map[string]time.Duration
	warmup, window    time.Duration
	naiveRuns         []config
	dir               string
}

// racyWait is longer than pollreload's racy-mtime margin (2 s).
const racyWait = 3 * time.Second

// config is one cell of the matrix.
type config struct {
	n     int
	tree  string
	cache string // "off" (attr_timeout=0) or "on" (1s)
	naive bool
}

func (c config) String() string {
	who := "pollreload"
	if c.naive {
		who = "naive"
	}
	return fmt.Sprintf("%s N=%d %s attr-cache=%s", who, c.n, c.tree, c.cache)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fl := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fl.SetOutput(stderr)
	o := &options{}
	fl.StringVar(&o.pollreload, "pollreload", "", "pollreload binary (required)")
	fl.StringVar(&o.naive, "naive", "", "naive poller binary (bench/naive), for -naive-runs")
	replicas := fl.String("replicas", "50,100,200", "replica counts")
	trees := fl.String("trees", "plain20,plain1000,kubelet", "trees: plain20, plain1000, kubelet")
	caches := fl.String("cache", "off,on", "kernel attribute caching: off (attr_timeout=0, like NFS noac), on (1s, like actimeo=1)")
	intervals := fl.String("intervals", "plain20=1s,plain1000=10s,kubelet=1s", "POLL_INTERVAL per tree")
	fl.DurationVar(&o.warmup, "warmup", 5*time.Second, "time after the start before the window, plus one interval")
	fl.DurationVar(&o.window, "window", 30*time.Second, "measured time per configuration")
	naiveRuns := fl.String("naive-runs", "50/plain20/off", "configurations the naive poller also runs, as N/tree/cache, comma-separated")
	fl.StringVar(&o.dir, "dir", "", "work directory (default: a new one under /dev/shm or the temp dir, removed at the end)")
	if err := fl.Parse(args); err != nil {
		return nil, err
	}
	if o.pollreload == "" {
		return nil, errors.New("-pollreload is required")
	}
	for _, s := range splitList(*replicas) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-replicas: %q is not a positive number", s)
		}
		o.replicas = append(o.replicas, n)
	}
	o.trees = splitList(*trees)
	for _, t := range o.trees {
		if _, ok := shapes[t]; !ok {
			return nil, fmt.Errorf("-trees: unknown tree %q (want plain20, plain1000 or kubelet)", t)
		}
	}
	o.caches = splitList(*caches)
	for _, c := range o.caches {
		if c != "off" && c != "on" {
			return nil, fmt.Errorf("-cache: %q (want off or on)", c)
		}
	}
	o.intervals = map[string]time.Duration{}
	for _, s := range splitList(*intervals) {
		t, d, ok := strings.Cut(s, "=")
		iv, err := time.ParseDuration(d)
		if !ok || err != nil || iv < 100*time.Millisecond {
			return nil, fmt.Errorf("-intervals: %q (want TREE=DURATION, at least 100ms)", s)
		}
		o.intervals[t] = iv
	}
	for _, t := range o.trees {
		if o.intervals[t] == 0 {
			return nil, fmt.Errorf("-intervals: no interval for tree %s", t)
		}
	}
	for _, s := range splitList(*naiveRuns) {
		parts := strings.Split(s, "/")
		if len(parts) != 3 {
			return nil, fmt.Errorf("-naive-runs: %q (want N/tree/cache)", s)
		}
		n, err := strconv.Atoi(parts[0])
		if err != nil || n < 1 || shapes[parts[1]].files == 0 || (parts[2] != "off" && parts[2] != "on") || o.intervals[parts[1]] == 0 {
			return nil, fmt.Errorf("-naive-runs: %q (want N/tree/cache with a tree and cache given above)", s)
		}
		o.naiveRuns = append(o.naiveRuns, config{n: n, tree: parts[1], cache: parts[2], naive: true})
	}
	if len(o.naiveRuns) > 0 && o.naive == "" {
		return nil, errors.New("-naive-runs needs -naive")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "# %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	began := time.Now()
	load0 := loadavg()

	dir := o.dir
	if dir == "" {
		base := ""
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
		if dir, err = os.MkdirTemp(base, "pollreload-fleet-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	backing := filepath.Join(dir, "backing")
	for _, t := range o.trees {
		if err := makeTree(filepath.Join(backing, t), t); err != nil {
			return fmt.Errorf("make tree %s: %w", t, err)
		}
	}
	// A file changed less than 2 s before a scan is read again by the
	// next one (pollreload's racy-mtime rule); the ctimes of the new trees
	// cannot be backdated, so let them age before any replica starts.
	if err := sleepCtx(ctx, racyWait); err != nil {
		return err
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	// The process every replica would signal; nothing changes while
	// measured, so it never is.
	target := exec.Command("sleep", "1000000")
	if err := target.Start(); err != nil {
		return fmt.Errorf("start target: %w", err)
	}
	defer func() { target.Process.Kill(); target.Wait() }()
	pidFile := filepath.Join(dir, "target.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(target.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}

	var results []result
	maxN := slices.Max(o.replicas)
	for _, r := range o.naiveRuns {
		maxN = max(maxN, r.n)
	}
	for _, cache := range o.caches {
		var cfgs []config
		for _, t := range o.trees {
			for _, n := range o.replicas {
				cfgs = append(cfgs, config{n: n, tree: t, cache: cache})
			}
			for _, r := range o.naiveRuns {
				if r.tree == t && r.cache == cache {
					cfgs = append(cfgs, r)
				}
			}
		}
		if len(cfgs) == 0 {
			continue
		}
		ttl := time.Duration(0)
		if cache == "on" {
			ttl = time.Second
		}
		srv := newServer(time.Second)
		logf("mounting %d counting FUSE mounts, attribute cache %s", maxN, cache)
		mounts, err := mountAll(srv, backing, filepath.Join(dir, "mnt", cache), maxN, ttl)
		if err != nil {
			unmountAll(mounts)
			return err
		}
		for _, c := range cfgs {
			if ctx.Err() != nil {
				break
			}
			logf("%s: start", c)
			res, err := measure(ctx, o, c, srv, mounts[:c.n], pidFile, logDir)
			if err != nil {
				unmountAll(mounts)
				return fmt.Errorf("%s: %w", c, err)
			}
			logf("%s: %.1f ops/s per replica, peak/mean %.1f, CPU %.0f ms/min, RssAnon %.0f KiB",
				c, res.opsPerSec, res.peakMean, res.cpuMsPerMin, res.rssAnonKB)
			results = append(results, res)
		}
		unmountAll(mounts)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	report(stdout, o, results, began, load0)
	return nil
}

// result is what one configuration measured.
type result struct {
	config
	interval    time.Duration
	window      time.Duration
	opsPerSec   float64         // counted requests per replica per second
	perTick     [nKinds]float64 // per scan, by kind
	scans       int64           // scans of all replicas in the window
	warmup      time.Duration   // from the start to the window
	peakMean    float64         // busiest 100 ms bucket of the window over the mean
	startPeak   float64         // busiest bucket of the warm-up over the window's mean
	cpuMsPerMin float64         // per replica
	rssAnonKB   float64         // mean per replica
	minOps      int64           // fewest requests of one replica in the window
	maxOps      int64
	serverCPU   float64 // the FUSE server's CPU, share of one core
	buckets     []int64 // the window's 100 ms buckets
	stretched   int     // replicas that logged stretching their interval
	silent      int     // replicas with no request in the window
}

func mountAll(srv *server, backing, dir string, n int, ttl time.Duration) ([]*mount, error) {
	mounts := make([]*mount, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mp := filepath.Join(dir, fmt.Sprintf("r%03d", i))
			if err := os.MkdirAll(mp, 0o755); err != nil {
				errs[i] = err
				return
			}
			mounts[i], errs[i] = srv.mountCounting(backing, mp, ttl)
		}()
	}
	wg.Wait()
	var live []*mount
	for _, m := range mounts {
		if m != nil {
			live = append(live, m)
		}
	}
	if err := errors.Join(errs...); err != nil {
		unmountAll(live)
		return nil, err
	}
	return mounts, nil
}

func unmountAll(mounts []*mount) {
	for _, m := range mounts {
		if m == nil {
			continue
		}
		if err := m.unmount(); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// measure runs one configuration: c.n replicas started at once, each on its
// own mount, a warm-up of o.warmup plus one interval (the first scan, which
// reads everything, and the random phase), then the window.
func measure(ctx context.Context, o *options, c config, srv *server, mounts []*mount, pidFile, logDir string) (result, error) {
	interval := o.intervals[c.tree]
	warmup := o.warmup + interval
	srv.restart(warmup + 4*interval + 30*time.Second + o.window + 10*time.Minute) // room for a slow start
	procs := make([]*exec.Cmd, 0, c.n)
	logs := make([]string, 0, c.n)
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			p.Wait()
		}
	}()
	for i, m := range mounts {
		root := filepath.Join(m.dir, c.tree)
		var cmd *exec.Cmd
		if c.naive {
			cmd = exec.Command(o.naive, "-interval", interval.String(), root)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		} else {
			cmd = exec.Command(o.pollreload)
			cmd.Env = []string{
				"PATH=" + os.Getenv("PATH"),
				"CONFIG_DIR=" + root,
				"PID_FILE=" + pidFile,
				"POLL_INTERVAL=" + interval.String(),
				"METRICS_ADDR=",
				"LOG_LEVEL=info",
			}
		}
		logName := fmt.Sprintf("%s-%d-%s-%s-r%03d.log", map[bool]string{false: "pollreload", true: "naive"}[c.naive], c.n, c.tree, c.cache, i)
		logs = append(logs, filepath.Join(logDir, logName))
		lf, err := os.Create(logs[len(logs)-1])
		if err != nil {
			return result{}, err
		}
		cmd.Stdout, cmd.Stderr = lf, lf
		err = cmd.Start()
		lf.Close()
		if err != nil {
			return result{}, fmt.Errorf("start replica %d: %w", i, err)
		}
		procs = append(procs, cmd)
	}
	if err := sleepCtx(ctx, warmup); err != nil {
		return result{}, err
	}
	// Steady means past the first scan (which reads everything) and the
	// second (at the random phase): on a loaded machine the first scans of
	// a large tree by many replicas at once can outlast the warm-up. The
	// root is opened once more at start-up, so three opens.
	scans0 := make([]int64, len(mounts))
	for deadline := time.Now().Add(4*interval + 30*time.Second); ; {
		least := int64(-1)
		for i, m := range mounts {
			scans0[i] = m.scanCount(c.tree)
			if least < 0 || scans0[i] < least {
				least = scans0[i]
			}
		}
		if least >= 3 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, bucketWidth); err != nil {
			return result{}, err
		}
	}
	before := make([][nKinds]int64, len(mounts))
	for i, m := range mounts {
		before[i] = m.snapshot()
	}
	cpu0, err := cpuAll(procs)
	if err != nil {
		return result{}, err
	}
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	if err := sleepCtx(ctx, o.window); err != nil {
		return result{}, err
	}
	elapsed := time.Since(t0)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	after := make([][nKinds]int64, len(mounts))
	var scans int64
	for i, m := range mounts {
		after[i] = m.snapshot()
		scans += m.scanCount(c.tree) - scans0[i]
	}
	cpu1, err := cpuAll(procs)
	if err != nil {
		return result{}, err
	}
	var rss int64
	for i, p := range procs {
		kb, err := statusKB(p.Process.Pid, "RssAnon")
		if err != nil {
			return result{}, fmt.Errorf("replica %d: %w", i, err)
		}
		rss += kb
	}

	res := result{config: c, interval: interval, window: elapsed, minOps: -1}
	var total int64
	var byKind [nKinds]int64
	for i := range mounts {
		var ops int64
		for k := range nKinds {
			d := after[i][k] - before[i][k]
			byKind[k] += d
			if k != kOther {
				ops += d
			}
		}
		total += ops
		if res.minOps < 0 || ops < res.minOps {
			res.minOps = ops
		}
		res.maxOps = max(res.maxOps, ops)
	}
	for i := range mounts {
		if after[i] == [nKinds]int64{} {
			return res, fmt.Errorf("replica %d made no request since it started: it is not scanning (see %s)", i, logDir)
		}
		if after[i] == before[i] {
			res.silent++
		}
	}
	n := float64(c.n)
	res.opsPerSec = float64(total) / n / elapsed.Seconds()
	res.scans = scans
	res.warmup = t0.Sub(srv.start)
	if scans > 0 {
		for k := range nKinds {
			res.perTick[k] = float64(byKind[k]) / float64(scans)
		}
	}
	var cpu int64
	for i := range procs {
		cpu += cpu1[i] - cpu0[i]
	}
	res.cpuMsPerMin = float64(cpu) * 1000 / userHZ / n * 60 / elapsed.Seconds()
	res.rssAnonKB = float64(rss) / n
	res.serverCPU = (tvSec(ru1.Utime) + tvSec(ru1.Stime) - tvSec(ru0.Utime) - tvSec(ru0.Stime)) / elapsed.Seconds()

	// Buckets wholly inside the window, and the warm-up's.
	first := int(t0.Sub(srv.start)/bucketWidth) + 1
	last := int(t0.Add(elapsed).Sub(srv.start) / bucketWidth)
	var sum, peak, startPeak int64
	for i := first; i < last && i < len(srv.buckets); i++ {
		v := srv.buckets[i].Load()
		res.buckets = append(res.buckets, v)
		sum += v
		peak = max(peak, v)
	}
	for i := 0; i < first-1 && i < len(srv.buckets); i++ {
		startPeak = max(startPeak, srv.buckets[i].Load())
	}
	if nb := len(res.buckets); nb > 0 && sum > 0 {
		mean := float64(sum) / float64(nb)
		res.peakMean = float64(peak) / mean
		res.startPeak = float64(startPeak) / mean
	}
	for i, p := range procs {
		if err := p.Process.Signal(syscall.Signal(0)); err != nil {
			return res, fmt.Errorf("replica %d exited during the run (see %s)", i, logDir)
		}
		if b, err := os.ReadFile(logs[i]); err == nil && strings.Contains(string(b), "stretching") {
			res.stretched++
		}
	}
	return res, nil
}

func tvSec(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

func cpuAll(procs []*exec.Cmd) ([]int64, error) {
	out := make([]int64, len(procs))
	for i, p := range procs {
		t, err := cpuTicks(p.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		out[i] = t
	}
	return out, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// shape is what a tree holds, for the arithmetic.
type shape struct {
	files int // regular files
	dirs  int // directories, the root included
	links int // symlinks
	desc  string
}

var shapes = map[string]shape{
	"plain20":   {files: 20, dirs: 1, desc: "20 files of 1 KiB in one directory"},
	"plain1000": {files: 1000, dirs: 11, desc: "1,000 files of 1 KiB in 10 directories"},
	// The version directory's 20 files, reached again through the 20
	// visible links; ..data is a link to a directory.
	"kubelet": {files: 20, dirs: 2, links: 21, desc: "kubelet volume: 20 keys, ..data link, timestamped directory"},
}

// makeTree writes the backing tree named tree at dir.
func makeTree(dir, tree string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	content := func(i int) string {
		return fmt.Sprintf("# key %04d\n%s\n", i, strings.Repeat(strconv.Itoa(i%10), 1000))
	}
	switch tree {
	case "plain20":
		for i := range 20 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("conf%02d.yaml", i)), []byte(content(i)), 0o644); err != nil {
				return err
			}
		}
	case "plain1000":
		for d := range 10 {
			sub := filepath.Join(dir, fmt.Sprintf("d%d", d))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
			for i := range 100 {
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("conf%03d.yaml", i)), []byte(content(d*100+i)), 0o644); err != nil {
					return err
				}
			}
		}
	case "kubelet":
		files := map[string]string{}
		for i := range 20 {
			files[fmt.Sprintf("key%02d.yaml", i)] = content(i)
		}
		if _, err := testenv.NewKubeletWriter(dir).Write(files); err != nil {
			return err
		}
	}
	// Backdate everything, so that no file's mtime is "racy" (too recent to
	// trust a stat) by the time the window starts.
	old := time.Now().Add(-time.Hour)
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, old)
	})
}
