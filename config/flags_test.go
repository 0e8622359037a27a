package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The argument lists below are copied from the manifests and code that
// generate them (e2e/dropin_test.go runs the same lists against real
// targets):
//
//   - pcrPrometheusChart: prometheus-community/helm-charts
//     charts/prometheus/templates/deploy.yaml at
//     cf408a290aec489277a94450bb3511432477a53a, rendered with the chart's
//     defaults (configmapReload.prometheus.containerPort 8080).
//   - pcrAlertmanagerChart: the same repository,
//     charts/alertmanager/templates/statefulset.yaml.
//   - pcrBlackboxChart: the same repository,
//     charts/prometheus-blackbox-exporter/templates/_helpers.tpl with its
//     values.yaml defaults (watchInterval 1m, logFormat logfmt, logLevel
//     info, containerPort 9115 and 8080).
//   - pcrOperatorSignal and pcrOperatorHTTP: prometheus-operator/prometheus-operator
//     pkg/prometheus/server/statefulset_test.go at
//     6adcebc5076c34f4f55f8f5f7b1e528929373ac7 (expectedArgsConfigReloader,
//     for ReloadStrategy ProcessSignal and the default HTTP one).
//   - pcrOperatorThanosRuler: the same commit, pkg/operator/config_reloader.go
//     (--listen-address, then --reload-url, then --watched-dir) with the
//     values pkg/thanos/statefulset.go passes.
//   - cmrAlertmanagerChart and cmrPrometheusChart: configmap-reload's args in
//     prometheus-community/helm-charts before they switched reloader:
//     charts/alertmanager/templates/statefulset.yaml at
//     cc2c507e4a4b625f561577bba13795b7f8bde40a^ and
//     charts/prometheus/templates/deploy.yaml at
//     3879ea94057bddb7e17ae3ef724f49a5bc2f9f5f^ (prefixURL empty).
//   - cmrREADME: every flag of jimmidyson/configmap-reload's README and
//     configmap-reload.go at 0ec4d67961d509d9414554e76caf46dd77cb32d8, in Go
//     flag syntax (single dash, value as the next argument).
var (
	pcrPrometheusChart = []string{
		"--watched-dir=/etc/config",
		"--listen-address=0.0.0.0:8080",
		"--reload-url=http://127.0.0.1:9090/-/reload",
	}
	pcrAlertmanagerChart = []string{
		"--watched-dir=/etc/alertmanager",
		"--reload-url=http://127.0.0.1:9093/-/reload",
	}
	pcrBlackboxChart = []string{
		"--config-file=/config/blackbox.yaml",
		"--watch-interval=1m",
		"--reload-url=http://127.0.0.1:9115/-/reload",
		"--listen-address=:8080",
		"--log-format=logfmt",
		"--log-level=info",
	}
	pcrOperatorSignal = []string{
		"--listen-address=:8080",
		"--reload-method=signal",
		"--runtimeinfo-url=http://localhost:9090/api/v1/status/runtimeinfo",
		"--config-file=/etc/prometheus/config/prometheus.yaml.gz",
		"--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
		"--watched-dir=/etc/prometheus/config",
	}
	pcrOperatorHTTP = []string{
		"--listen-address=:8080",
		"--reload-url=http://localhost:9090/-/reload",
		"--config-file=/etc/prometheus/config/prometheus.yaml.gz",
		"--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
		"--watched-dir=/etc/prometheus/config",
	}
	pcrOperatorThanosRuler = []string{
		"--listen-address=:8080",
		"--reload-url=http://localhost:10902/-/reload",
		"--watched-dir=/etc/thanos/rules/thanos-ruler-foo-rulefiles-0",
	}
	cmrAlertmanagerChart = []string{
		"--volume-dir=/etc/alertmanager",
		"--webhook-url=http://127.0.0.1:9093/-/reload",
	}
	cmrPrometheusChart = []string{
		"--volume-dir=/etc/config",
		"--webhook-url=http://127.0.0.1:9090/-/reload",
		"--volume-dir=/etc/config/rules",
	}
	cmrREADME = []string{
		"-volume-dir", "/etc/config",
		"-volume-dir", "/etc/secrets",
		"-webhook-url", "http://127.0.0.1:9090/-/reload",
		"-webhook-method", "PUT",
		"-webhook-status-code", "204",
		"-webhook-retries", "5",
		"-web.listen-address", ":9533",
		"-web.telemetry-path", "/metrics",
	}
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []FlagSetting
		wantNotes []string
	}{
		{"prometheus chart", pcrPrometheusChart, []FlagSetting{
			{"CONFIG_DIR", "--watched-dir", "/etc/config", false},
			{"METRICS_ADDR", "--listen-address", "0.0.0.0:8080", false},
			{"RELOAD_URL", "--reload-url", "http://127.0.0.1:9090/-/reload", false},
		}, nil},
		{"alertmanager chart", pcrAlertmanagerChart, []FlagSetting{
			{"CONFIG_DIR", "--watched-dir", "/etc/alertmanager", false},
			{"RELOAD_URL", "--reload-url", "http://127.0.0.1:9093/-/reload", false},
		}, nil},
		{"blackbox chart watches its config file", pcrBlackboxChart, []FlagSetting{
			{"CONFIG_DIR", "--config-file", "/config/blackbox.yaml", false},
			{"POLL_INTERVAL", "--watch-interval", "1m", false},
			{"RELOAD_URL", "--reload-url", "http://127.0.0.1:9115/-/reload", false},
			{"METRICS_ADDR", "--listen-address", ":8080", false},
			{"LOG_FORMAT", "--log-format", "logfmt", false},
			{"LOG_LEVEL", "--log-level", "info", false},
		}, nil},
		{"operator thanos ruler", pcrOperatorThanosRuler, []FlagSetting{
			{"METRICS_ADDR", "--listen-address", ":8080", false},
			{"RELOAD_URL", "--reload-url", "http://localhost:10902/-/reload", false},
			{"CONFIG_DIR", "--watched-dir", "/etc/thanos/rules/thanos-ruler-foo-rulefiles-0", false},
		}, nil},
		{"signal method defaults to prometheus", []string{"--reload-method=signal", "--watched-dir=/etc/prometheus/config"}, []FlagSetting{
			{"PROCESS_NAME", "--reload-method", "prometheus", true},
			{"CONFIG_DIR", "--watched-dir", "/etc/prometheus/config", false},
		}, nil},
		{"signal method with a name and the runtimeinfo url", []string{"--reload-method", "signal", "--process-executable-name", "thanos", "--runtimeinfo-url=http://localhost:9090/api/v1/status/runtimeinfo", "--watched-dir", "/d"}, []FlagSetting{
			{"PROCESS_NAME", "--process-executable-name", "thanos", false},
			{"CONFIG_DIR", "--watched-dir", "/d", false},
		}, []string{"--runtimeinfo-url"}},
		{"timings", []string{"--watched-dir=/d", "--reload-url=http://127.0.0.1/", "--watch-interval=10s", "--delay-interval=3s", "--retry-interval=5s", "--reload-timeout=30s"}, []FlagSetting{
			{"CONFIG_DIR", "--watched-dir", "/d", false},
			{"RELOAD_URL", "--reload-url", "http://127.0.0.1/", false},
			{"POLL_INTERVAL", "--watch-interval", "10s", false},
			{"SETTLE_TIME", "--delay-interval", "3s", false},
			{"RELOAD_TIMEOUT", "--reload-timeout", "30s", false},
		}, []string{"--retry-interval"}},
		{"configmap-reload alertmanager chart", cmrAlertmanagerChart, []FlagSetting{
			{"CONFIG_DIR", "--volume-dir", "/etc/alertmanager", false},
			{"RELOAD_URL", "--webhook-url", "http://127.0.0.1:9093/-/reload", false},
		}, nil},
		{"configmap-reload, repeated webhook-url", []string{"--volume-dir=/etc/config", "--webhook-url=http://127.0.0.1:9090/-/reload", "--webhook-url=http://127.0.0.1:9093/-/reload"}, []FlagSetting{
			{"CONFIG_DIR", "--volume-dir", "/etc/config", false},
			{"RELOAD_URL", "--webhook-url", "http://127.0.0.1:9090/-/reload,http://127.0.0.1:9093/-/reload", false},
		}, nil},
		{"configmap-reload prometheus chart, repeated volume-dir", cmrPrometheusChart, []FlagSetting{
			{"CONFIG_DIR", "--volume-dir", "/etc/config", false},
			{"CONFIG_DIR", "--volume-dir", "/etc/config/rules", false},
			{"RELOAD_URL", "--webhook-url", "http://127.0.0.1:9090/-/reload", false},
		}, nil},
		{"configmap-reload every flag, Go flag syntax", cmrREADME, []FlagSetting{
			{"CONFIG_DIR", "-volume-dir", "/etc/config", false},
			{"CONFIG_DIR", "-volume-dir", "/etc/secrets", false},
			{"RELOAD_URL", "-webhook-url", "http://127.0.0.1:9090/-/reload", false},
			{"RELOAD_METHOD", "-webhook-method", "PUT", false},
			{"METRICS_ADDR", "-web.listen-address", ":9533", false},
		}, []string{"-webhook-status-code", "-webhook-retries", "-web.telemetry-path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, err := ParseFlags(tt.args)
			if err != nil {
				t.Fatalf("ParseFlags(%q) error = %v; want none", tt.args, err)
			}
			var settings []FlagSetting
			var notes []string
			for _, s := range got {
				if s.Var == "" {
					notes = append(notes, s.Flag)
				} else {
					settings = append(settings, s)
				}
			}
			if !slices.Equal(settings, tt.want) {
				t.Errorf("settings = %+v; want %+v", settings, tt.want)
			}
			if !slices.Equal(notes, tt.wantNotes) {
				t.Errorf("no-effect flags = %q; want %q", notes, tt.wantNotes)
			}
			if rest != nil {
				t.Errorf("rest = %q; want none", rest)
			}
		})
	}
}

func TestParseFlagsRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int // exit code
		want string
	}{
		{"operator signal form renders", pcrOperatorSignal, 2,
			`invalid --config-envsubst-file="/etc/prometheus/config_out/prometheus.env.yaml": pollreload does not render configuration (environment substitution, gunzip); keep prometheus-config-reloader for rendering, or render it in an init container, and point --watched-dir (or CONFIG_DIR) at the rendered directory`},
		{"operator http form renders", pcrOperatorHTTP, 2,
			`invalid --config-envsubst-file="/etc/prometheus/config_out/prometheus.env.yaml": pollreload does not render configuration (environment substitution, gunzip); keep prometheus-config-reloader for rendering, or render it in an init container, and point --watched-dir (or CONFIG_DIR) at the rendered directory`},
		{"init container runs once", []string{"--watch-interval=0", "--listen-address=:8081", "--watched-dir=/d"}, 2,
			`invalid --watch-interval="0": pollreload has no run-once mode (prometheus-operator's init-config-reloader renders configuration, which pollreload does not do); want a Go duration of at least 100ms, such as 2s`},
		{"web config file", []string{"--listen-address=:8080", "--web-config-file=/etc/prometheus/web_config/web-config.yaml", "--watched-dir=/d"}, 2,
			`invalid --web-config-file="/etc/prometheus/web_config/web-config.yaml": pollreload serves /metrics without TLS or authentication; listen on 127.0.0.1 (--listen-address=127.0.0.1:8080) behind a proxy such as kube-rbac-proxy, or disable it with --listen-address=`},
		{"two webhooks, one with a comma", []string{"--volume-dir=/d", "--webhook-url=http://127.0.0.1:1/a", "--webhook-url=http://u:secret@127.0.0.1:2/b?x=1,2"}, 2,
			`invalid --webhook-url="http://xxxxx:xxxxx@127.0.0.1:2/b?x=xxxxx": with several --webhook-url flags, a URL cannot hold a comma (RELOAD_URL is a comma-separated list); escape it as %2C`},
		{"non-2xx status code", []string{"--volume-dir=/d", "--webhook-status-code=302"}, 2,
			`invalid --webhook-status-code="302": want a 2xx status code; pollreload counts any 2xx answer as success`},
		{"other telemetry path", []string{"--volume-dir=/d", "--web.telemetry-path=/m"}, 2,
			`invalid --web.telemetry-path="/m": pollreload serves metrics on /metrics only`},
		{"unknown reload method", []string{"--reload-method=exec"}, 2,
			`invalid --reload-method="exec": want http or signal`},
		{"unknown flag", []string{"--watched-dir=/d", "--frobnicate"}, 2, `usage: unknown argument "--frobnicate"; see pollreload --help`},
		{"stray argument", []string{"--watched-dir=/d", "extra"}, 2, `usage: unknown argument "extra"; see pollreload --help`},
		{"missing value", []string{"--webhook-url"}, 2, `usage: --webhook-url needs a value, as in --webhook-url=VALUE`},
		{"nothing after --", []string{"--watched-dir=/d", "--"}, 2, `usage: -- needs a command to run, as in pollreload -- nginx -g 'daemon off;'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseFlags(tt.args)
			if err == nil {
				t.Fatalf("ParseFlags(%q) = no error; want %q", tt.args, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error = %q; want %q", got, tt.want)
			}
			// Both exit 2 (pollreload's exitCode).
			var ce *Error
			if !errors.Is(err, ErrUsage) && !errors.As(err, &ce) {
				t.Errorf("error %#v is neither a usage error nor an *Error", err)
			}
		})
	}
}

// TestFlagsWinOverEnvironment loads a configuration as run does, with the
// environment and flags disagreeing.
func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Setenv("CONFIG_DIR", "/from/env")
	t.Setenv("POLLRELOAD_POLL_INTERVAL", "7s")
	t.Setenv("RELOAD_URL", "http://127.0.0.1:1/env")
	t.Setenv("LOG_FORMAT", "json")
	flags, rest, err := ParseFlags([]string{"--volume-dir=/a", "--volume-dir=/b", "--watch-interval=3s", "--webhook-url=http://127.0.0.1:2/flag", "--", "app", "-x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rest, []string{"app", "-x"}) {
		t.Errorf("rest = %q; want [app -x]", rest)
	}
	c, err := Load(os.Environ(), flags)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ConfigDir, []string{"/a", "/b"}; !slices.Equal(got, want) {
		t.Errorf("ConfigDir = %q; want %q", got, want)
	}
	if c.PollInterval != 3*time.Second {
		t.Errorf("PollInterval = %v; want 3s (the flag, over POLLRELOAD_POLL_INTERVAL)", c.PollInterval)
	}
	if c.ReloadURL != "http://127.0.0.1:2/flag" {
		t.Errorf("ReloadURL = %q; want the flag's", c.ReloadURL)
	}
	if c.LogFormat != "json" {
		t.Errorf("LogFormat = %q; want json (no flag: the environment's)", c.LogFormat)
	}
	// Errors name the flag, as the user wrote it.
	flags, _, _ = ParseFlags([]string{"--volume-dir=/a", "--delay-interval=-1s"})
	c, err = Load(os.Environ(), flags)
	if err == nil {
		err = c.Validate(false)
	}
	var ce *Error
	want := `invalid --delay-interval="-1s": want a Go duration from 0 to 24h, such as 1s (0 disables settling)`
	if !errors.As(err, &ce) || err.Error() != want {
		t.Errorf("error = %v; want %q", err, want)
	}
}

// TestHelpAndDocsListEveryFlag keeps --help, the configuration page and the
// flag table in agreement.
func TestHelpAndDocsListEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	help := Usage()
	for _, f := range dropInFlags {
		if !strings.Contains(help, "    --"+f.name+" ") {
			t.Errorf("--help does not list --%s", f.name)
		}
		if !strings.Contains(string(readme), "`--"+f.name) {
			t.Errorf("docs/configuration.md does not list --%s", f.name)
		}
	}
	for _, v := range Variables() {
		if !strings.Contains(string(readme), "| `"+v+"` |") {
			t.Errorf("docs/configuration.md's table does not list %s", v)
		}
	}
}
