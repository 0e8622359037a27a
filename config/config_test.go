package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pollreload/pollreload/hasher"
)

// validConfig is a working configuration each case changes one thing of.
func validConfig() Config {
	return Config{
		ConfigDir:     []string{"/etc/app"},
		ProcessName:   []string{"app"},
		ReloadSignal:  SignalValue(syscall.SIGHUP),
		ReloadTargets: "roots",
		ReloadMethod:  "POST",
		ReloadTimeout: 5 * time.Second,
		PollInterval:  2 * time.Second,
		SettleTime:    time.Second,
		MetricsAddr:   ":9533",
		LogFormat:     "text",
		LogLevel:      "info",
		// The defaults of the MAX_ variables are the hasher's, with the
		// reasons given there (TestLoadConfig compares).
		MaxFiles:          hasher.DefaultMaxFiles,
		MaxFileSize:       hasher.DefaultMaxFileSize,
		MaxDepth:          hasher.DefaultMaxDepth,
		MaxTotalSize:      hasher.DefaultMaxTotalSize,
		VerifyInterval:    10 * time.Minute,
		HealthMissedScans: 3,
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wrapper bool
		want    string // "" means valid; otherwise the exact error
	}{
		{"defaults", func(c *Config) {}, false, ""},
		{"pid file target", func(c *Config) { c.ProcessName = nil; c.PIDFile = "/run/app.pid" }, false, ""},
		{"url target", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "http://127.0.0.1:8080/-/reload" }, false, ""},
		{"wrapper needs no target", func(c *Config) { c.ProcessName = nil }, true, ""},
		{"metrics disabled", func(c *Config) { c.MetricsAddr = "" }, false, ""},
		{"settle zero", func(c *Config) { c.SettleTime = 0 }, false, ""},
		{"globs", func(c *Config) { c.Include = []string{"*.conf", "conf.d/*", "**/*.pem"} }, false, ""},
		{"largest bounds", func(c *Config) {
			c.PollInterval, c.SettleTime, c.ReloadTimeout, c.VerifyInterval, c.HealthMissedScans = 24*time.Hour, 24*time.Hour, time.Hour, 168*time.Hour, 1000
		}, false, ""},

		{"missing config dir", func(c *Config) { c.ConfigDir = nil }, false,
			"CONFIG_DIR is not set: want a comma-separated list of directories or files to watch"},
		{"no target", func(c *Config) { c.ProcessName = nil }, false,
			"no reload target: set PROCESS_NAME (or PID_FILE or RELOAD_URL), or start the application with pollreload -- CMD ARGS"},
		{"two targets", func(c *Config) { c.PIDFile = "/run/app.pid" }, false,
			"set only one of PID_FILE, PROCESS_NAME"},
		{"target in wrapper mode", func(c *Config) {}, true,
			"PROCESS_NAME cannot be used with wrapper mode (pollreload -- CMD): the reload goes to CMD"},
		{"relative url", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "/reload" }, false,
			`invalid RELOAD_URL="/reload": want an absolute http:// or https:// URL (or several, comma-separated)`},
		{"url credentials hidden", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "ftp://user:secret@host/x" }, false,
			`invalid RELOAD_URL="ftp://xxxxx:xxxxx@host/x": want an absolute http:// or https:// URL (or several, comma-separated)`},
		{"signal and webhooks", func(c *Config) { c.ReloadURL = "http://127.0.0.1:1/hook, https://hooks.example/x" }, false, ""},
		{"verify by metrics", func(c *Config) {
			c.ReloadVerifyURL = "http://127.0.0.1:9090/metrics"
			c.ReloadVerifyMetric = "prometheus_config_last_reload_successful"
		}, false, ""},
		{"verify children", func(c *Config) { c.ReloadVerify = "children" }, false, ""},
		{"verify children in wrapper mode", func(c *Config) { c.ProcessName = nil; c.ReloadVerify = "children" }, true, ""},
		{"auth for the verify URL", func(c *Config) {
			c.ReloadVerifyURL = "https://127.0.0.1:9090/metrics"
			c.BearerTokenFile, c.CAFile, c.ReloadHeaders = "/var/run/token", "/ca.crt", "X-Scope-OrgID: a"
		}, false, ""},
		{"second url bad", func(c *Config) { c.ReloadURL = "http://127.0.0.1:1/hook,https://tok3n@/x?k=v" }, false,
			`invalid RELOAD_URL="https://xxxxx@/x?k=xxxxx": want an absolute http:// or https:// URL (or several, comma-separated)`},
		{"verify url relative", func(c *Config) { c.ReloadVerifyURL = "127.0.0.1:9090/metrics" }, false,
			`invalid RELOAD_VERIFY_URL="(unparsable URL)": want the absolute http:// or https:// URL of the application's metrics, such as http://127.0.0.1:9090/metrics`},
		{"verify metric without url", func(c *Config) { c.ReloadVerifyMetric = "prometheus_config_last_reload_successful" }, false,
			`invalid RELOAD_VERIFY_METRIC="prometheus_config_last_reload_successful": needs RELOAD_VERIFY_URL, the metrics endpoint to read it from`},
		{"verify metric bad name", func(c *Config) { c.ReloadVerifyURL = "http://h/metrics"; c.ReloadVerifyMetric = "up" }, false,
			`invalid RELOAD_VERIFY_METRIC="up": want the name of a gauge ending in _last_reload_successful or _last_reload_success_timestamp_seconds, such as prometheus_config_last_reload_successful`},
		{"verify unknown", func(c *Config) { c.ReloadVerify = "workers" }, false,
			`invalid RELOAD_VERIFY="workers": want children (a master/worker server replaces its workers), exec (a server re-executes itself in place, as sshd does), or leave it empty (the signalled process must only stay alive)`},
		{"verify children without a process", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "http://h/r"; c.ReloadVerify = "children" }, false,
			`invalid RELOAD_VERIFY="children": children watches a signalled process: set PROCESS_NAME or PID_FILE, or use pollreload -- CMD`},
		{"app unknown", func(c *Config) { c.App = "lighttpd" }, false,
			`invalid RELOAD_APP="lighttpd": want one of nginx, apache, sshd, gunicorn, uwsgi, postgresql, pgbouncer, haproxy, prometheus, mariadb (or apache2, httpd, postgres, mysqld)`},
		{"app alias", func(c *Config) { c.App = "Apache2" }, false, ""},
		{"app status without a process", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "http://h/r"; c.AppStatus = "/run/h.sock" }, false,
			`invalid RELOAD_APP_STATUS="/run/h.sock": is for a process target's application: set PROCESS_NAME or PID_FILE (and RELOAD_APP)`},
		{"auth without HTTP", func(c *Config) { c.BearerTokenFile = "/t" }, false,
			"RELOAD_BEARER_TOKEN_FILE is set but there is no HTTP request to use it for: set RELOAD_URL or RELOAD_VERIFY_URL, or unset it"},
		{"basic auth without password", func(c *Config) { c.ReloadURL = "http://h/r"; c.BasicAuthUsername = "u" }, false,
			"RELOAD_BASIC_AUTH_USERNAME is set but RELOAD_BASIC_AUTH_PASSWORD_FILE is not: want both"},
		{"cert without key", func(c *Config) { c.ReloadURL = "http://h/r"; c.CertFile = "/c.crt" }, false,
			"RELOAD_CERT_FILE and RELOAD_KEY_FILE go together: set both for a client certificate, or neither"},
		{"header without value hides it", func(c *Config) { c.ReloadURL = "http://h/r"; c.ReloadHeaders = "sekrit-token" }, false,
			`invalid RELOAD_HEADERS: want comma-separated "Name: value" pairs, such as "X-Scope-OrgID: team-a"`},
		{"reserved header, as given", func(c *Config) {
			c.ReloadURL = "http://h/r"
			c.ReloadHeaders = "Authorization: Bearer sekrit"
			c.given = map[string]string{"RELOAD_HEADERS": "POLLRELOAD_RELOAD_HEADERS", "RELOAD_BEARER_TOKEN_FILE": "POLLRELOAD_RELOAD_BEARER_TOKEN_FILE"}
		}, false,
			"invalid POLLRELOAD_RELOAD_HEADERS: header Authorization is set by pollreload itself; use POLLRELOAD_RELOAD_BEARER_TOKEN_FILE or RELOAD_BASIC_AUTH_* for credentials"},
		{"token and basic auth", func(c *Config) {
			c.ReloadURL = "http://h/r"
			c.BearerTokenFile, c.BasicAuthUsername, c.BasicAuthPasswordFile = "/t", "u", "/p"
		}, false, "set RELOAD_BEARER_TOKEN_FILE or RELOAD_BASIC_AUTH_USERNAME, not both"},
		{"password without user", func(c *Config) { c.ReloadURL = "http://h/r"; c.BasicAuthPasswordFile = "/p" }, false,
			"RELOAD_BASIC_AUTH_PASSWORD_FILE is set but RELOAD_BASIC_AUTH_USERNAME is not: want both"},
		{"bad method", func(c *Config) { c.ReloadMethod = "DELETE" }, false,
			`invalid RELOAD_METHOD="DELETE": want GET, POST, PUT or PATCH`},
		{"zero timeout", func(c *Config) { c.ReloadTimeout = 0 }, false,
			`invalid RELOAD_TIMEOUT="0s": want a Go duration above 0 and at most 1h, such as 5s`},
		{"timeout over 1h", func(c *Config) { c.ReloadTimeout = time.Hour + time.Second }, false,
			`invalid RELOAD_TIMEOUT="1h0m1s": want a Go duration above 0 and at most 1h, such as 5s`},
		{"interval zero", func(c *Config) { c.PollInterval = 0 }, false,
			`invalid POLL_INTERVAL="0s": want a Go duration from 100ms to 24h, such as 2s`},
		{"interval below 100ms", func(c *Config) { c.PollInterval = 99 * time.Millisecond }, false,
			`invalid POLL_INTERVAL="99ms": want a Go duration from 100ms to 24h, such as 2s`},
		{"negative interval", func(c *Config) { c.PollInterval = -time.Second }, false,
			`invalid POLL_INTERVAL="-1s": want a Go duration from 100ms to 24h, such as 2s`},
		{"interval 1000000h", func(c *Config) { c.PollInterval = 1000000 * time.Hour }, false,
			`invalid POLL_INTERVAL="1000000h0m0s": want a Go duration from 100ms to 24h, such as 2s`},
		{"negative settle", func(c *Config) { c.SettleTime = -time.Second }, false,
			`invalid SETTLE_TIME="-1s": want a Go duration from 0 to 24h, such as 1s (0 disables settling)`},
		{"settle over 24h", func(c *Config) { c.SettleTime = 25 * time.Hour }, false,
			`invalid SETTLE_TIME="25h0m0s": want a Go duration from 0 to 24h, such as 1s (0 disables settling)`},
		{"address without port", func(c *Config) { c.MetricsAddr = "localhost" }, false,
			`invalid METRICS_ADDR="localhost": want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)`},
		{"address bad port", func(c *Config) { c.MetricsAddr = ":99999" }, false,
			`invalid METRICS_ADDR=":99999": want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)`},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, false,
			`invalid LOG_FORMAT="xml": want text, logfmt or json`},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, false,
			`invalid LOG_LEVEL="verbose": want debug, info, warn or error`},
		{"negative max files", func(c *Config) { c.MaxFiles = -1 }, false,
			`invalid MAX_FILES="-1": want a whole number of 0 or more (0: no limit)`},
		{"negative max depth", func(c *Config) { c.MaxDepth = -1 }, false,
			`invalid MAX_DEPTH="-1": want a whole number of 0 or more (0: no limit)`},
		{"bad glob", func(c *Config) { c.Exclude = []string{"[a-"} }, false,
			`invalid EXCLUDE="[a-": want comma-separated globs such as *.conf, conf.d/* or **/*.pem`},
		{"negative verify", func(c *Config) { c.VerifyInterval = -time.Minute }, false,
			`invalid VERIFY_INTERVAL="-1m0s": want a Go duration from 0 to 168h, such as 10m (0 disables)`},
		{"verify over a week", func(c *Config) { c.VerifyInterval = 169 * time.Hour }, false,
			`invalid VERIFY_INTERVAL="169h0m0s": want a Go duration from 0 to 168h, such as 10m (0 disables)`},
		{"missed scans", func(c *Config) { c.HealthMissedScans = 0 }, false,
			`invalid HEALTH_MISSED_SCANS="0": want a whole number from 1 to 1000`},
		{"missed scans 5000000000", func(c *Config) { c.HealthMissedScans = 5000000000 }, false,
			`invalid HEALTH_MISSED_SCANS="5000000000": want a whole number from 1 to 1000`},
		{"name as given", func(c *Config) {
			c.PollInterval = time.Millisecond
			c.given = map[string]string{"POLL_INTERVAL": "POLLRELOAD_POLL_INTERVAL"}
		}, false, `invalid POLLRELOAD_POLL_INTERVAL="1ms": want a Go duration from 100ms to 24h, such as 2s`},
		{"flag as given", func(c *Config) {
			c.PollInterval = time.Millisecond
			c.given = map[string]string{"POLL_INTERVAL": "--watch-interval"}
		}, false, `invalid --watch-interval="1ms": want a Go duration from 100ms to 24h, such as 2s`},
		{"set but empty", func(c *Config) {
			c.ConfigDir = nil
			c.given = map[string]string{"CONFIG_DIR": "CONFIG_DIR"}
		}, false, "CONFIG_DIR is set but empty: want a comma-separated list of directories or files to watch"},
		{"log format set but empty", func(c *Config) {
			c.LogFormat = ""
			c.given = map[string]string{"LOG_FORMAT": "POLLRELOAD_LOG_FORMAT"}
		}, false, "POLLRELOAD_LOG_FORMAT is set but empty: want text, logfmt or json"},
		{"targets named as given", func(c *Config) {
			c.PIDFile = "/run/app.pid"
			c.given = map[string]string{"PROCESS_NAME": "--process-executable-name"}
		}, false, "set only one of PID_FILE, --process-executable-name"},
		{"webhook beside a process", func(c *Config) {
			c.ReloadURL = "http://127.0.0.1/"
			c.given = map[string]string{"RELOAD_URL": "--webhook-url"}
		}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate(tt.wrapper)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Validate() = %q; want %q", got, tt.want)
			}
		})
	}
}

// loadEnv sets env for the test and reads the configuration as run does.
func loadEnv(t *testing.T, env map[string]string, flags ...FlagSetting) (Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	return Load(os.Environ(), flags)
}

func TestLoadConfig(t *testing.T) {
	t.Run("defaults and compatibility names", func(t *testing.T) {
		c, err := loadEnv(t, map[string]string{"CONFIG_DIR": " /a, /b ,,", "PROCESS_NAME": "nginx"})
		if err != nil {
			t.Fatal(err)
		}
		want := validConfig()
		want.ConfigDir = []string{"/a", "/b"}
		want.ProcessName = []string{"nginx"}
		if got := c; !equalConfig(got, want) {
			t.Errorf("Load() = %+v; want %+v", got, want)
		}
	})
	t.Run("prefixed name wins", func(t *testing.T) {
		c, err := loadEnv(t, map[string]string{"POLL_INTERVAL": "5s", "POLLRELOAD_POLL_INTERVAL": "3s"})
		if err != nil {
			t.Fatal(err)
		}
		if c.PollInterval != 3*time.Second {
			t.Errorf("PollInterval = %v; want 3s", c.PollInterval)
		}
	})
	t.Run("empty metrics address disables", func(t *testing.T) {
		c, err := loadEnv(t, map[string]string{"METRICS_ADDR": ""})
		if err != nil {
			t.Fatal(err)
		}
		if c.MetricsAddr != "" {
			t.Errorf("MetricsAddr = %q; want empty", c.MetricsAddr)
		}
	})
	t.Run("typed values parsed once", func(t *testing.T) {
		c, err := loadEnv(t, map[string]string{"RELOAD_SIGNAL": "usr1", "RELOAD_TARGETS": "Oldest", "MAX_FILE_SIZE": "1Mi"})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.ReloadSignal.Signal(), syscall.SIGUSR1; got != want {
			t.Errorf("ReloadSignal = %v; want %v", got, want)
		}
		if got, want := c.ReloadTargets, PolicyValue("oldest"); got != want {
			t.Errorf("ReloadTargets = %q; want %q", got, want)
		}
		if got, want := c.MaxFileSize, ByteSize(1<<20); got != want {
			t.Errorf("MaxFileSize = %d; want %d", got, want)
		}
	})
	// Spellings users bring from neighbours (issue 9, point 26).
	spellings := []struct {
		name      string
		env       map[string]string
		format    string
		level     string
		sizeBytes int64
	}{
		{"logfmt is text", map[string]string{"LOG_FORMAT": "logfmt"}, "text", "info", hasher.DefaultMaxFileSize},
		{"VERBOSE=true is debug", map[string]string{"VERBOSE": "true"}, "text", "debug", hasher.DefaultMaxFileSize},
		{"explicit LOG_LEVEL wins over VERBOSE", map[string]string{"VERBOSE": "true", "LOG_LEVEL": "warn"}, "text", "warn", hasher.DefaultMaxFileSize},
		{"VERBOSE=false keeps info", map[string]string{"VERBOSE": "false"}, "text", "info", hasher.DefaultMaxFileSize},
		{"no limit", map[string]string{"MAX_FILE_SIZE": "0"}, "text", "info", 0},
		{"quantity Mi", map[string]string{"MAX_FILE_SIZE": "1Mi"}, "text", "info", 1 << 20},
		{"quantity Gi", map[string]string{"MAX_FILE_SIZE": "1Gi"}, "text", "info", 1 << 30},
		{"quantity Ki", map[string]string{"MAX_FILE_SIZE": "500Ki"}, "text", "info", 500 << 10},
		{"quantity M", map[string]string{"MAX_FILE_SIZE": "1M"}, "text", "info", 1000000},
	}
	for _, tt := range spellings {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadEnv(t, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.LogFormat != tt.format || c.LogLevel != tt.level || int64(c.MaxFileSize) != tt.sizeBytes {
				t.Errorf("got LOG_FORMAT %q, LOG_LEVEL %q, MAX_FILE_SIZE %d; want %q, %q, %d",
					c.LogFormat, c.LogLevel, c.MaxFileSize, tt.format, tt.level, tt.sizeBytes)
			}
		})
	}
	parseErrors := []struct{ name, env, value, want string }{
		{"unparsable duration", "POLL_INTERVAL", "2 seconds", `invalid POLL_INTERVAL="2 seconds": want a Go duration such as 500ms, 2s or 1m`},
		{"prefixed name as given", "POLLRELOAD_SETTLE_TIME", "soon", `invalid POLLRELOAD_SETTLE_TIME="soon": want a Go duration such as 500ms, 2s or 1m`},
		{"overflowing duration", "POLL_INTERVAL", "9999999999h", `invalid POLL_INTERVAL="9999999999h": want a Go duration such as 500ms, 2s or 1m`},
		{"overflowing int", "MAX_FILES", "99999999999999999999", `invalid MAX_FILES="99999999999999999999": want a whole number`},
		{"unparsable bool", "RELOAD_FORCE", "yes please", `invalid RELOAD_FORCE="yes please": want true or false`},
		{"unparsable int", "MAX_FILES", "many", `invalid MAX_FILES="many": want a whole number`},
		{"empty int", "MAX_FILES", "", `MAX_FILES is set but empty: want a whole number`},
		{"unknown signal", "RELOAD_SIGNAL", "SIGBOGUS", `invalid RELOAD_SIGNAL="SIGBOGUS": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"signal 40", "RELOAD_SIGNAL", "40", `invalid RELOAD_SIGNAL="40": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"signal 0", "RELOAD_SIGNAL", "0", `invalid RELOAD_SIGNAL="0": want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"signal SIGKILL", "RELOAD_SIGNAL", "SIGKILL", `invalid RELOAD_SIGNAL="SIGKILL": SIGKILL cannot be caught, so it cannot ask an application to reload; use a signal the application handles, such as SIGHUP`},
		{"signal 19 is SIGSTOP", "POLLRELOAD_RELOAD_SIGNAL", "19", `invalid POLLRELOAD_RELOAD_SIGNAL="19": SIGSTOP cannot be caught, so it cannot ask an application to reload; use a signal the application handles, such as SIGHUP`},
		{"empty signal", "RELOAD_SIGNAL", "", `RELOAD_SIGNAL is set but empty: want a name such as SIGHUP, HUP or hup, or a number from 1 to 31`},
		{"bad policy", "RELOAD_TARGETS", "newest", `invalid RELOAD_TARGETS="newest": want roots, all or oldest`},
		{"empty policy", "RELOAD_TARGETS", "", `RELOAD_TARGETS is set but empty: want roots, all or oldest`},
		{"bad size", "MAX_FILE_SIZE", "10MB", `invalid MAX_FILE_SIZE="10MB": want a size in bytes such as 1048576, 64KiB, 10Mi, 1Gi or 1M (0: no limit)`},
		{"prefixed bad size", "POLLRELOAD_MAX_FILE_SIZE", "lots", `invalid POLLRELOAD_MAX_FILE_SIZE="lots": want a size in bytes such as 1048576, 64KiB, 10Mi, 1Gi or 1M (0: no limit)`},
	}
	for _, tt := range parseErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadEnv(t, map[string]string{tt.env: tt.value})
			var ce *Error
			if !errors.As(err, &ce) || err.Error() != tt.want {
				t.Errorf("Load() error = %v; want Error %q", err, tt.want)
			}
		})
	}
}

// TestUnknownVariables covers the environment a pod really gets: service
// links for a Service named after the release, and names scripts export.
func TestUnknownVariables(t *testing.T) {
	serviceLinks := []string{
		"POLLRELOAD_SERVICE_HOST=10.0.0.7", "POLLRELOAD_SERVICE_PORT=9533", "POLLRELOAD_SERVICE_PORT_METRICS=9533",
		"POLLRELOAD_PORT=tcp://10.0.0.7:9533", "POLLRELOAD_PORT_9533_TCP=tcp://10.0.0.7:9533",
		"POLLRELOAD_PORT_9533_TCP_PROTO=tcp", "POLLRELOAD_PORT_9533_TCP_PORT=9533", "POLLRELOAD_PORT_9533_TCP_ADDR=10.0.0.7",
		"POLLRELOAD_METRICS_SERVICE_HOST=10.0.0.8", "POLLRELOAD_METRICS_PORT_8080_UDP_ADDR=10.0.0.8",
	}
	tests := []struct {
		name        string
		environ     []string
		wantIgnored []string
		wantErr     string
	}{
		{"service links are silent", serviceLinks, nil, ""},
		{"script names are warned about", []string{"POLLRELOAD_BIN=/usr/bin/pollreload", "POLLRELOAD_VERSION=0.1.0", "PATH=/bin"},
			[]string{"POLLRELOAD_BIN", "POLLRELOAD_VERSION"}, ""},
		{"unprefixed names are not ours", []string{"LOGLEVEL=x", "CONFIGDIR=/x", "HOME=/root"}, nil, ""},
		{"typo is fatal", []string{"POLLRELOAD_POLL_INTERVALL=3s"}, nil,
			"unknown variable POLLRELOAD_POLL_INTERVALL (did you mean POLLRELOAD_POLL_INTERVAL?); see pollreload --help"},
		{"typo among service links is fatal", append(slices.Clone(serviceLinks), "POLLRELOAD_CONFIG_DIRS=/x"), nil,
			"unknown variable POLLRELOAD_CONFIG_DIRS (did you mean POLLRELOAD_CONFIG_DIR?); see pollreload --help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ignored, err := unknownVariables(tt.environ)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("error = %q; want %q", got, tt.wantErr)
			}
			if !slices.Equal(ignored, tt.wantIgnored) {
				t.Errorf("ignored = %q; want %q", ignored, tt.wantIgnored)
			}
		})
	}
}

func equalConfig(a, b Config) bool {
	return strings.Join(a.ConfigDir, ",") == strings.Join(b.ConfigDir, ",") &&
		strings.Join(a.ProcessName, ",") == strings.Join(b.ProcessName, ",") &&
		a.ReloadSignal == b.ReloadSignal && a.ReloadTargets == b.ReloadTargets &&
		a.PollInterval == b.PollInterval && a.SettleTime == b.SettleTime &&
		a.MetricsAddr == b.MetricsAddr && a.MaxFiles == b.MaxFiles && a.MaxFileSize == b.MaxFileSize &&
		a.ReloadTimeout == b.ReloadTimeout && a.ReloadMethod == b.ReloadMethod &&
		a.LogFormat == b.LogFormat && a.LogLevel == b.LogLevel && a.HealthMissedScans == b.HealthMissedScans &&
		a.VerifyInterval == b.VerifyInterval
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"64KiB", 64 << 10, true}, {"10 MiB", 10 << 20, true},
		{"1GiB", 1 << 30, true}, {"5B", 5, true}, {"10MB", 0, false}, {"-1", 0, false}, {"", 0, false}, {"99999999TiB", 0, false},
		{"1Mi", 1 << 20, true}, {"1Gi", 1 << 30, true}, {"500Ki", 500 << 10, true}, {"2Ti", 2 << 40, true},
		{"1M", 1000000, true}, {"1G", 1000000000, true}, {"128k", 128000, true}, {"1T", 1000000000000, true},
		{"1Mib", 0, false}, {"1K", 0, false}, {"1.5Mi", 0, false}, {"99999999999T", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "64KiB", "1GiB", "9223372036854775807", "-5", " 3 MiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Errorf("parseSize(%q) = %d; a size is never negative", s, n)
		}
	})
}

// FuzzConfigFromEnv feeds arbitrary values to the variables users most
// often get wrong. Whatever they hold, pollreload must either accept a
// sound configuration or refuse with one line that names a variable.
func FuzzConfigFromEnv(f *testing.F) {
	f.Add("2s", "SIGHUP", "0", ":9533", "roots")
	f.Add("50ms", "hup", "10MiB", "127.0.0.1:0", "all")
	f.Add("1h", "64", "1GiB", "", "oldest")
	f.Add("-1s", "SIG", "x", "[::1]:80", "ROOTS")
	f.Add("9999999999h", "0", "7TiB", "host:port", "")
	f.Fuzz(func(t *testing.T, interval, sig, size, addr, policy string) {
		for _, s := range []string{interval, sig, size, addr, policy} {
			if strings.ContainsRune(s, 0) {
				t.Skip("environment values cannot hold NUL")
			}
		}
		t.Setenv("CONFIG_DIR", "/etc/app")
		t.Setenv("PROCESS_NAME", "app")
		t.Setenv("POLL_INTERVAL", interval)
		t.Setenv("RELOAD_SIGNAL", sig)
		t.Setenv("MAX_FILE_SIZE", size)
		t.Setenv("METRICS_ADDR", addr)
		t.Setenv("RELOAD_TARGETS", policy)
		c, err := Load(os.Environ(), nil)
		if err == nil {
			err = c.Validate(false)
		}
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			named := false
			for _, v := range Variables() {
				named = named || strings.Contains(msg, v)
			}
			if !named {
				t.Errorf("error names no variable: %q", msg)
			}
			return
		}
		if c.PollInterval < minPollInterval {
			t.Errorf("accepted POLL_INTERVAL=%q as %v, below the minimum", interval, c.PollInterval)
		}
		if c.MaxFileSize < 0 {
			t.Errorf("accepted MAX_FILE_SIZE=%q as %d", size, c.MaxFileSize)
		}
	})
}
