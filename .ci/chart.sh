#!/usr/bin/env bash
# .ci/chart.sh checks the Helm chart and the examples: helm lint and helm
# template for the default values and each ci/*-values.yaml, then the chart
# test module (charts/go.mod): strict decoding into the Kubernetes and
# Prometheus Operator Go types, Pod Security "restricted", sidecar on/off,
# schema rejections, the plain manifests in examples/, the rendered sidecar
# environments against the real daemon, and the example run with real nginx.
#
# Needs: Go at /usr/local/go; installs helm with `go install` and nginx-light
# with apt-get when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export PATH=$PATH:$(go env GOPATH)/bin:/usr/sbin
# Tests that need helm fail instead of skipping when it is missing.
export REQUIRE_TOOLS=1
start=$(date +%s)

. .ci/lib.sh
install_helm
echo "helm: $(helm version --template '{{.Version}}')"
if ! command -v nginx >/dev/null; then
	install_missing nginx-light=/usr/sbin/nginx
	# Debian starts the service; the test runs its own nginx.
	service nginx stop >/dev/null 2>&1 || true
fi

chart=charts/pollreload
values=("")
for f in "$chart"/ci/*-values.yaml; do values+=("$f"); done
total=0
for f in "${values[@]}"; do
	args=()
	[[ -n $f ]] && args=(-f "$f")
	helm lint --strict --quiet "$chart" "${args[@]}"
	count=$(helm template ci "$chart" "${args[@]}" | grep -c '^kind:' || true)
	total=$((total + count))
	printf 'helm lint + template %-62s %2d objects\n' "${f:-(default values)}" "$count"
done
echo "rendered objects: $total across ${#values[@]} values sets"

echo "== chart tests (charts/go.mod)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
(cd charts && go vet ./... && go test -race -count=1 -timeout 20m -v ./...) >"$log" 2>&1 || {
	cat "$log"
	exit 1
}
grep -E '^(--- FAIL|FAIL|ok|PASS)|summary:' "$log"
passed=$(grep -c -- '--- PASS' "$log" || true)
echo "policy check: every rendered and example pod spec passes Pod Security \"restricted\" ($passed tests and subtests passed)"
echo "chart.sh: ok in $(($(date +%s) - start)) s"
