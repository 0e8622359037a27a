package faults

import (
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/faults/faultfs"
)

// TestESTALEStorm makes every lookup, stat, open and readdir of a FUSE
// mount fail with ESTALE, as an NFS export does after its server restarted
// with new file handles, and watches the daemon over a window: it must back
// off (scan attempts fall below the poll schedule) and its CPU use stays
// bounded. The CPU figure is logged; its bound is only a guard against a
// busy retry loop, and speed itself is shown by bench/compare.sh.
func TestESTALEStorm(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		window   = 5 * time.Second
	)
	fsys, _, mnt := mountFaultFS(t)
	r := startRig(t, mnt, map[string]string{"POLL_INTERVAL": interval.String()})
	r.waitScans("ok", 2)
	pid := r.pr.PID()

	stale := map[string]string{"kind": "stale"}
	errs := r.metric("pollreload_scan_errors_total", stale)
	for _, op := range []faultfs.Op{faultfs.OpStat, faultfs.OpOpen, faultfs.OpReaddir} {
		fsys.Fail(faultfs.AnyPath, op, syscall.ESTALE)
	}
	r.waitMetric("pollreload_scan_errors_total", stale, errs+1)
	// Let backoff settle in before measuring: the first retries may come at
	// the normal pace.
	time.Sleep(2 * time.Second)

	cpu0, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	scans0 := r.scans()
	errs0 := r.metric("pollreload_scan_errors_total", stale)
	hits0 := fsys.Hits(faultfs.AnyPath, faultfs.OpStat)
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start)
	cpu1, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	scans := r.scans() - scans0
	errs1 := r.metric("pollreload_scan_errors_total", stale) - errs0
	hits := fsys.Hits(faultfs.AnyPath, faultfs.OpStat) - hits0
	cpu := cpu1 - cpu0
	effective := r.metric("pollreload_poll_interval_seconds", nil)
	t.Logf("ESTALE storm over %v at POLL_INTERVAL=%v (-race build): CPU %v (%.1f%% of one core), %v scans finished, %v stale errors counted, %d ESTALE answers, poll_interval_seconds %v",
		elapsed.Round(time.Millisecond), interval, cpu, 100*cpu.Seconds()/elapsed.Seconds(), scans, errs1, hits, effective)

	if cpu > elapsed/4 {
		t.Errorf("CPU during the storm: %v over %v; want < 25%% of one core", cpu, elapsed.Round(time.Millisecond))
	}
	if schedule := elapsed.Seconds() / interval.Seconds(); scans > 0.8*schedule {
		t.Errorf("scans during the storm: %v in %v; want fewer than 80%% of the %v the schedule allows (error backoff)", scans, elapsed.Round(time.Millisecond), schedule)
	}
	r.wantReloads("during the storm", 0)

	fsys.Clear()
	r.waitScans("ok", quietScans)
	r.wantReloads("after the storm, content unchanged", 0)
}
