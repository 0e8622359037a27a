package poller

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// TestSlowReloadURLKeepsHealthy is issue 9 #16: a RELOAD_URL that answers
// slowly, but within RELOAD_TIMEOUT, must not turn /healthz red. A real HTTP
// server on 127.0.0.1 holds the request for many intervals; health measures
// scans, which go on meanwhile.
func TestSlowReloadURLKeepsHealthy(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	reloader, err := signaler.NewHTTP(signaler.HTTPOptions{URL: "http://" + ln.Addr().String() + "/-/reload", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.conf")
	write(t, conf, "v1")
	interval := 50 * time.Millisecond
	h := start(t, Options{Roots: []string{dir}, Targets: one(reloader), Interval: interval, MaxMissed: 2})
	write(t, conf, "v2")
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload request never arrived")
	}
	// 20 intervals with the request held: ten times what MaxMissed allows.
	before := h.value("pollreload_scans_total", "result", "ok")
	for deadline := time.Now().Add(20 * interval); time.Now().Before(deadline); time.Sleep(interval / 2) {
		if err := h.loop.Healthy(); err != nil {
			t.Fatalf("Healthy() = %v while a reload request is in flight; want nil", err)
		}
	}
	if after := h.value("pollreload_scans_total", "result", "ok"); after < before+5 {
		t.Errorf("scans during the slow delivery: %v; want them to go on", after-before)
	}
	if got := h.value("pollreload_reload_pending"); got != 1 {
		t.Errorf("reload_pending = %v during the delivery; want 1", got)
	}
	once.Do(func() { close(release) })
	h.waitFor("the delivery", func() bool { return h.value("pollreload_reloads_total", "result", "success") == 1 })
	if got := h.value("pollreload_reload_pending"); got != 0 {
		t.Errorf("reload_pending = %v after the delivery; want 0", got)
	}
}

// syncBuffer is a log sink safe for the loop's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHungScanWarnsOnce is issue 9 #30: a scan hung for many ticks is one
// warning, not one per tick; every missed tick is still counted, and logged
// at debug level.
func TestHungScanWarnsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "v1")
	sc := &hangingScanner{inner: hasher.New(hasher.Options{}), release: make(chan struct{})}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := start(t, Options{Roots: []string{dir}, Scanner: sc, Interval: 30 * time.Millisecond, Logger: log})
	h.waitFor("five missed ticks", func() bool { return h.value("pollreload_missed_scans_total") >= 5 })
	close(sc.release)
	h.scans(2)
	text := logs.String()
	warn := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "previous scan still running") {
			warn++
		}
	}
	if warn != 1 {
		t.Errorf("%d warnings about the hung scan; want 1:\n%s", warn, text)
	}
	if n := strings.Count(text, "level=DEBUG msg=\"previous scan still running"); n < 4 {
		t.Errorf("%d debug lines for the other missed ticks; want at least 4", n)
	}
	if !strings.Contains(text, "the scan that was still running has finished") {
		t.Errorf("no line saying the hung scan finished:\n%s", text)
	}
}
