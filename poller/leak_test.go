package poller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/internal/testenv"
	"github.com/pollreload/pollreload/metrics"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// refusedURL returns a URL on a port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/-/reload"
}

// httpVerifier verifies a delivery by a GET to its URL, as RELOAD_VERIFY_URL
// does: any answer but 2xx, or none within the timeout, is no verdict.
type httpVerifier struct {
	url    string
	client *http.Client
	calls  *atomic.Int64
}

func (httpVerifier) Before(context.Context) {}

func (v httpVerifier) After(ctx context.Context, _ verify.Delivery) error {
	v.calls.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("verify: %s", resp.Status)
	}
	return nil
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestNoLeakOverManyTicks is issue 21's leak check: 10,000 ticks of the loop,
// driven directly (the real loop waits at least 20ms a tick), with the
// content changing every 10 ticks and every delivery and verification
// failing in its own way, against real processes and servers: no target,
// a target that does not catch the signal, HTTP refused, HTTP hanging past
// the timeout, HTTP rejected (400), and a delivered reload whose verify
// endpoint is down or hangs. Once the loop has stopped, the goroutine count
// and the open descriptors come back to what they were before it started.
func TestNoLeakOverManyTicks(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 ticks")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	write(t, conf, "v0")

	sleeperName := testenv.UniqueName("leaknc")
	cmd := exec.Command("/bin/sleep", "600")
	cmd.Args[0] = sleeperName
	testenv.Spawn(t, sleeperName, cmd)

	rejecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad config: line 3", http.StatusBadRequest)
	}))
	defer rejecting.Close()
	accepting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer accepting.Close()
	hanging := testenv.SilentServer(t) + "/"
	refused := refusedURL(t)

	const timeout = 20 * time.Millisecond
	newHTTP := func(url string) signaler.Reloader {
		h, err := signaler.NewHTTP(signaler.HTTPOptions{URL: url, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	newProcess := func(name string) signaler.Reloader {
		p, err := signaler.NewProcess(signaler.ProcessOptions{Names: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var downCalls, hangCalls atomic.Int64
	verifyClient := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer verifyClient.CloseIdleConnections()
	targets := []Target{
		{Name: "no_target", Reloader: newProcess(testenv.UniqueName("leaknone"))},
		{Name: "not_catching", Reloader: newProcess(sleeperName)},
		{Name: "refused", Reloader: newHTTP(refused)},
		{Name: "hanging", Reloader: newHTTP(hanging)},
		{Name: "rejected", Reloader: newHTTP(rejecting.URL)},
		{Name: "verify_down", Reloader: newHTTP(accepting.URL), Verifier: httpVerifier{url: refused, client: verifyClient, calls: &downCalls}},
		{Name: "verify_hangs", Reloader: newHTTP(accepting.URL), Verifier: httpVerifier{url: hanging, client: verifyClient, calls: &hangCalls}},
	}

	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	reg := prometheus.NewRegistry()
	l, err := New(Options{
		Roots: []string{dir}, Interval: time.Millisecond, Scanner: hasher.New(hasher.Options{}),
		Targets: targets, Metrics: metrics.New(reg, metrics.BuildInfo{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	const ticks = 10000
	drain := func() {
		for {
			select {
			case r := <-l.results:
				l.finish(r)
			default:
				return
			}
		}
	}
	for i := range ticks {
		if i%10 == 0 {
			write(t, conf, "v"+strconv.Itoa(i))
		}
		if _, ok := l.step(ctx); !ok {
			t.Fatal("the loop stopped")
		}
		drain()
	}
	cancel()
	l.wg.Wait()
	drain()
	l.watchdog.Stop()

	attempts := 0.0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "pollreload_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" {
					results[lp.GetValue()] += m.GetCounter().GetValue()
					attempts += m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Logf("%d ticks, %.0f counted deliveries by result: %v; verifications against a down endpoint %d, a hanging one %d",
		ticks, attempts, results, downCalls.Load(), hangCalls.Load())
	for _, want := range []string{"no_target", "not_catching", "error", "rejected"} {
		if results[want] == 0 {
			t.Errorf("no delivery ended %s; the test does not exercise it", want)
		}
	}
	if downCalls.Load() == 0 || hangCalls.Load() == 0 {
		t.Errorf("verifications: %d against the down endpoint, %d against the hanging one; want both exercised", downCalls.Load(), hangCalls.Load())
	}

	// Goroutines of closed connections end a moment after the close: wait
	// for the counts to settle (a bound for a leak, not a speed check).
	deadline := time.Now().Add(10 * time.Second)
	var g, fds int
	for {
		runtime.GC()
		g, fds = runtime.NumGoroutine(), openFDs(t)
		if g <= baseG && fds <= baseFD || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines %d → %d, open descriptors %d → %d", baseG, g, baseFD, fds)
	if g > baseG {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d after the loop stopped; %d before it started\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	}
	if fds > baseFD {
		t.Errorf("open descriptors: %d after the loop stopped; %d before it started", fds, baseFD)
	}
}
