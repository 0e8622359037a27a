package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// The metrics server's timeouts (server.go newMetricsServer). The test waits
// up to ten times each: a bound for a loaded machine, not a latency check.
const (
	metricsIdleTimeout       = 10 * time.Second
	metricsReadHeaderTimeout = 5 * time.Second
)

// TestMetricsServerClosesIdleConnections opens 100 keep-alive connections
// to the real daemon's metrics port, makes one request on each and leaves
// them idle, plus connections that send half a request or nothing at all.
// The server must close every one of them by itself; before it had
// timeouts, all were still open as long as the client kept them.
func TestMetricsServerClosesIdleConnections(t *testing.T) {
	pr := testenv.Start(t, map[string]string{"CONFIG_DIR": t.TempDir(), "RELOAD_URL": "http://127.0.0.1:9/-/reload"})

	type result struct {
		kind   string
		closed time.Duration
		err    error
	}
	const idle = 100
	results := make(chan result, idle+20)
	var wg sync.WaitGroup
	probe := func(kind string, bound time.Duration, send func(net.Conn, *bufio.Reader) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", pr.MetricsAddr)
			if err != nil {
				results <- result{kind: kind, err: err}
				return
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			if err := send(conn, br); err != nil {
				results <- result{kind: kind, err: err}
				return
			}
			start := time.Now()
			conn.SetReadDeadline(start.Add(bound))
			_, err = br.ReadByte()
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), isReset(err):
				results <- result{kind: kind, closed: time.Since(start)}
			case err == nil:
				results <- result{kind: kind, err: errors.New("server sent more data on an idle connection")}
			default:
				results <- result{kind: kind, err: fmt.Errorf("still open after %v: %w", bound, err)}
			}
		}()
	}
	for range idle {
		probe("idle keep-alive", 10*metricsIdleTimeout, func(conn net.Conn, br *bufio.Reader) error {
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: pollreload\r\n\r\n"); err != nil {
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				return errors.New("server closed a keep-alive connection right after the response")
			}
			return err
		})
	}
	for range 10 {
		probe("half a header", 10*metricsReadHeaderTimeout, func(conn net.Conn, _ *bufio.Reader) error {
			_, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: pollreload\r\nX-Slow: ")
			return err
		})
		probe("silent", 10*metricsReadHeaderTimeout, func(net.Conn, *bufio.Reader) error { return nil })
	}
	wg.Wait()
	close(results)
	slowest := map[string]time.Duration{}
	n := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Errorf("%s connection: %v", r.kind, r.err)
			continue
		}
		n[r.kind]++
		slowest[r.kind] = max(slowest[r.kind], r.closed)
	}
	for kind, d := range slowest {
		t.Logf("%d %s connections closed by the server, the last after %v", n[kind], kind, d.Round(100*time.Millisecond))
	}

	// Headers beyond MaxHeaderBytes are refused, not buffered.
	conn, err := net.Dial("tcp", pr.MetricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /metrics HTTP/1.1\r\nHost: pollreload\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	go io.WriteString(conn, req)
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("64 KiB header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: status %s; want 431", resp.Status)
	}
	t.Logf("64 KiB header: %s", resp.Status)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset by peer")
}
