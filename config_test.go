package main

import (
	"strings"
	"testing"
	"time"
)

// validConfig is a working configuration each case changes one thing of.
func validConfig() Config {
	return Config{
		ConfigDir:         []string{"/etc/app"},
		ProcessName:       []string{"app"},
		ReloadSignal:      "SIGHUP",
		ReloadTargets:     "roots",
		ReloadMethod:      "POST",
		ReloadTimeout:     5 * time.Second,
		PollInterval:      2 * time.Second,
		SettleTime:        time.Second,
		MetricsAddr:       ":9533",
		LogFormat:         "text",
		LogLevel:          "info",
		MaxFiles:          100000,
		MaxFileSize:       "0",
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
		{"signal short name", func(c *Config) { c.ReloadSignal = "hup" }, false, ""},
		{"signal number", func(c *Config) { c.ReloadSignal = "10" }, false, ""},
		{"pid file target", func(c *Config) { c.ProcessName = nil; c.PIDFile = "/run/app.pid" }, false, ""},
		{"url target", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "http://127.0.0.1:8080/-/reload" }, false, ""},
		{"wrapper needs no target", func(c *Config) { c.ProcessName = nil }, true, ""},
		{"metrics disabled", func(c *Config) { c.MetricsAddr = "" }, false, ""},
		{"size with suffix", func(c *Config) { c.MaxFileSize = "64MiB" }, false, ""},
		{"settle zero", func(c *Config) { c.SettleTime = 0 }, false, ""},
		{"globs", func(c *Config) { c.Include = []string{"*.conf", "conf.d/*"} }, false, ""},

		{"missing config dir", func(c *Config) { c.ConfigDir = nil }, false,
			"CONFIG_DIR is not set: want a comma-separated list of directories or files to watch"},
		{"no target", func(c *Config) { c.ProcessName = nil }, false,
			"no reload target: set PROCESS_NAME (or PID_FILE or RELOAD_URL), or start the application with pollreload -- CMD ARGS"},
		{"two targets", func(c *Config) { c.PIDFile = "/run/app.pid" }, false,
			"set only one of PID_FILE, PROCESS_NAME"},
		{"target in wrapper mode", func(c *Config) {}, true,
			"PROCESS_NAME cannot be used with wrapper mode (pollreload -- CMD): the reload goes to CMD"},
		{"unknown signal", func(c *Config) { c.ReloadSignal = "SIGFOO" }, false,
			`invalid RELOAD_SIGNAL="SIGFOO": want a signal name such as SIGHUP, HUP or hup, or a number from 1 to 64`},
		{"signal zero", func(c *Config) { c.ReloadSignal = "0" }, false,
			`invalid RELOAD_SIGNAL="0": want a signal name such as SIGHUP, HUP or hup, or a number from 1 to 64`},
		{"bad policy", func(c *Config) { c.ReloadTargets = "newest" }, false,
			`invalid RELOAD_TARGETS="newest": want roots, all or oldest`},
		{"relative url", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "/reload" }, false,
			`invalid RELOAD_URL="/reload": want an absolute http:// or https:// URL`},
		{"url credentials hidden", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "ftp://user:secret@host/x" }, false,
			`invalid RELOAD_URL="ftp://xxxxx:xxxxx@host/x": want an absolute http:// or https:// URL`},
		{"bad method", func(c *Config) { c.ReloadMethod = "DELETE" }, false,
			`invalid RELOAD_METHOD="DELETE": want GET, POST, PUT or PATCH`},
		{"zero timeout", func(c *Config) { c.ReloadTimeout = 0 }, false,
			`invalid RELOAD_TIMEOUT="0s": want a positive Go duration such as 5s`},
		{"interval zero", func(c *Config) { c.PollInterval = 0 }, false,
			`invalid POLL_INTERVAL="0s": want a Go duration of at least 100ms, such as 2s`},
		{"interval below 100ms", func(c *Config) { c.PollInterval = 99 * time.Millisecond }, false,
			`invalid POLL_INTERVAL="99ms": want a Go duration of at least 100ms, such as 2s`},
		{"negative interval", func(c *Config) { c.PollInterval = -time.Second }, false,
			`invalid POLL_INTERVAL="-1s": want a Go duration of at least 100ms, such as 2s`},
		{"negative settle", func(c *Config) { c.SettleTime = -time.Second }, false,
			`invalid SETTLE_TIME="-1s": want a Go duration of 0 or more, such as 1s (0 disables settling)`},
		{"address without port", func(c *Config) { c.MetricsAddr = "localhost" }, false,
			`invalid METRICS_ADDR="localhost": want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)`},
		{"address bad port", func(c *Config) { c.MetricsAddr = ":99999" }, false,
			`invalid METRICS_ADDR=":99999": want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)`},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, false,
			`invalid LOG_FORMAT="xml": want text or json`},
		{"log level", func(c *Config) { c.LogLevel = "verbose" }, false,
			`invalid LOG_LEVEL="verbose": want debug, info, warn or error`},
		{"negative max files", func(c *Config) { c.MaxFiles = -1 }, false,
			`invalid MAX_FILES="-1": want a whole number of 0 or more (0: no limit)`},
		{"bad size", func(c *Config) { c.MaxFileSize = "10MB" }, false,
			`invalid MAX_FILE_SIZE="10MB": want a size in bytes such as 1048576, 64KiB, 10MiB or 1GiB (0: no limit)`},
		{"bad glob", func(c *Config) { c.Exclude = []string{"[a-"} }, false,
			`invalid EXCLUDE="[a-": want comma-separated globs such as *.conf or conf.d/*`},
		{"negative verify", func(c *Config) { c.VerifyInterval = -time.Minute }, false,
			`invalid VERIFY_INTERVAL="-1m0s": want a Go duration of 0 or more, such as 10m (0 disables)`},
		{"missed scans", func(c *Config) { c.HealthMissedScans = 0 }, false,
			`invalid HEALTH_MISSED_SCANS="0": want a whole number of 1 or more`},
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

func TestLoadConfig(t *testing.T) {
	t.Run("defaults and compatibility names", func(t *testing.T) {
		t.Setenv("CONFIG_DIR", " /a, /b ,,")
		t.Setenv("PROCESS_NAME", "nginx")
		c, err := loadConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		want := validConfig()
		want.ConfigDir = []string{"/a", "/b"}
		want.ProcessName = []string{"nginx"}
		if got := c; !equalConfig(got, want) {
			t.Errorf("loadConfig() = %+v; want %+v", got, want)
		}
	})
	t.Run("prefixed name wins", func(t *testing.T) {
		t.Setenv("POLL_INTERVAL", "5s")
		t.Setenv("POLLRELOAD_POLL_INTERVAL", "3s")
		c, err := loadConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.PollInterval != 3*time.Second {
			t.Errorf("PollInterval = %v; want 3s", c.PollInterval)
		}
	})
	t.Run("empty metrics address disables", func(t *testing.T) {
		t.Setenv("METRICS_ADDR", "")
		c, err := loadConfig(nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.MetricsAddr != "" {
			t.Errorf("MetricsAddr = %q; want empty", c.MetricsAddr)
		}
	})
	parseErrors := []struct{ name, env, value, want string }{
		{"unparsable duration", "POLL_INTERVAL", "2 seconds", `invalid POLL_INTERVAL="2 seconds": want a Go duration such as 500ms, 2s or 1m`},
		{"unparsable prefixed duration", "POLLRELOAD_SETTLE_TIME", "soon", `invalid SETTLE_TIME="soon": want a Go duration such as 500ms, 2s or 1m`},
		{"unparsable bool", "RELOAD_FORCE", "yes please", `invalid RELOAD_FORCE="yes please": want true or false`},
		{"unparsable int", "MAX_FILES", "many", `invalid MAX_FILES="many": want a whole number`},
	}
	for _, tt := range parseErrors {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			_, err := loadConfig(nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("loadConfig() error = %v; want %q", err, tt.want)
			}
		})
	}
	t.Run("typo with prefix", func(t *testing.T) {
		_, err := loadConfig([]string{"PATH=/bin", "POLLRELOAD_POLL_INTERVALL=3s"})
		want := "unknown variable POLLRELOAD_POLL_INTERVALL (did you mean POLLRELOAD_POLL_INTERVAL?); see pollreload --help"
		if err == nil || err.Error() != want {
			t.Errorf("loadConfig() error = %v; want %q", err, want)
		}
	})
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
		c, err := loadConfig(nil)
		if err == nil {
			err = c.Validate(false)
		}
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			named := false
			for _, v := range variables() {
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
		if n, err := parseSize(c.MaxFileSize); err != nil || n < 0 {
			t.Errorf("accepted MAX_FILE_SIZE=%q: %d, %v", size, n, err)
		}
	})
}
