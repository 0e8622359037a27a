// Package monitoring holds what operators plug into their monitoring:
// alerts.yaml (Prometheus alerting rules, with promtool unit tests in
// alerts_test.yaml) and dashboard.json (a Grafana dashboard). The chart ships
// byte-identical copies in charts/pollreload/files as a PrometheusRule and a
// dashboard ConfigMap.
//
// The package has no Go code of its own, only tests:
//
//	go test -race -v ./monitoring/
//
// runs `promtool check rules` and `promtool test rules`, checks that every
// alert has a runbook section in docs/operations.md and that the chart's copies match,
// and then starts a real Prometheus scraping a real pollreload that reloads a
// target and meets read errors: every dashboard query and every alert
// expression must parse and return data there, so a misspelt metric or label
// fails the build. Prometheus and promtool come from Debian's prometheus
// package; without them the tests skip (fail with REQUIRE_TOOLS=1).
package monitoring
