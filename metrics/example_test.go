package metrics_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollreload/pollreload/metrics"
)

func ExampleHandler() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "1.0.0", Revision: "abc"})
	m.Change()

	srv := httptest.NewServer(metrics.Handler(reg, health{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "pollreload_changes_total") {
			fmt.Println(line)
		}
	}
	// Output: pollreload_changes_total 1
}
