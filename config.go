package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pollreload/pollreload/signaler"
)

// envPrefix is the project's own prefix. Every variable can also be given
// as POLLRELOAD_NAME, which wins over NAME; an unknown POLLRELOAD_ variable
// is a startup error, so a typo cannot silently fall back to a default.
const envPrefix = "POLLRELOAD"

// minPollInterval keeps a misconfigured sidecar from hammering a shared
// filesystem.
const minPollInterval = 100 * time.Millisecond

// Config is pollreload's whole configuration, read once from the
// environment. The first three variables are config-reloader-sidecar's,
// with the same meaning.
type Config struct {
	ConfigDir         []string      `envconfig:"CONFIG_DIR" desc:"comma-separated directories (or single files) to watch; required"`
	ProcessName       []string      `envconfig:"PROCESS_NAME" desc:"name(s) of the process to signal, matched against argv[0]'s and the executable's base name, and comm for names of at most 15 bytes; a name with / is an absolute path matched against argv[0] and the executable"`
	ReloadSignal      string        `envconfig:"RELOAD_SIGNAL" default:"SIGHUP" desc:"signal to send: SIGHUP, HUP, hup or a number"`
	PIDFile           string        `envconfig:"PID_FILE" desc:"file holding the PID to signal, re-read on every reload (instead of PROCESS_NAME)"`
	ReloadTargets     string        `envconfig:"RELOAD_TARGETS" default:"roots" desc:"which matches to signal: roots (matches whose parent is not a match), all, oldest"`
	ReloadForce       bool          `envconfig:"RELOAD_FORCE" default:"false" desc:"signal even a process that does not catch the signal (its default action may kill it)"`
	ReloadURL         string        `envconfig:"RELOAD_URL" desc:"HTTP(S) endpoint to call instead of signalling a process"`
	ReloadMethod      string        `envconfig:"RELOAD_METHOD" default:"POST" desc:"HTTP method for RELOAD_URL: GET, POST, PUT or PATCH"`
	ReloadTimeout     time.Duration `envconfig:"RELOAD_TIMEOUT" default:"5s" desc:"timeout of one RELOAD_URL request"`
	ReloadOnStart     bool          `envconfig:"RELOAD_ON_START" default:"false" desc:"reload once after the first scan (normally the first scan is only the baseline)"`
	PollInterval      time.Duration `envconfig:"POLL_INTERVAL" default:"2s" desc:"time between scans (Go duration, at least 100ms)"`
	SettleTime        time.Duration `envconfig:"SETTLE_TIME" default:"1s" desc:"plain trees: new content must stay the same this long before a reload; kubelet volumes are atomic and never wait"`
	MetricsAddr       string        `envconfig:"METRICS_ADDR" default:":9533" desc:"listen address for /metrics, /healthz, /readyz; empty disables"`
	LogFormat         string        `envconfig:"LOG_FORMAT" default:"text" desc:"log format on stderr: text or json"`
	LogLevel          string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	MaxFiles          int           `envconfig:"MAX_FILES" default:"100000" desc:"most files per watched path; more is an error (0: no limit)"`
	MaxFileSize       string        `envconfig:"MAX_FILE_SIZE" default:"0" desc:"largest file to hash, in bytes or with KiB, MiB, GiB (0: no limit)"`
	Include           []string      `envconfig:"INCLUDE" desc:"comma-separated globs; if set, only matching files count (matched against the relative path and the base name)"`
	Exclude           []string      `envconfig:"EXCLUDE" desc:"comma-separated globs of files to ignore"`
	VerifyInterval    time.Duration `envconfig:"VERIFY_INTERVAL" default:"10m" desc:"re-read files whose stat looks unchanged after this long, to catch rewrites stat cannot show (same size and mtime on a filesystem without ctime, such as sshfs); 0 disables"`
	HealthMissedScans int           `envconfig:"HEALTH_MISSED_SCANS" default:"3" desc:"/healthz fails after a scan runs this many intervals"`
}

// ConfigError is an invalid setting: one line that names the variable, the
// value and what is accepted.
type ConfigError struct {
	Var   string
	Value string
	Want  string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s is not set: %s", e.Var, e.Want)
	}
	return fmt.Sprintf("invalid %s=%q: %s", e.Var, e.Value, e.Want)
}

// loadConfig reads the environment once.
func loadConfig(environ []string) (Config, error) {
	var c Config
	if err := unknownVariables(environ); err != nil {
		return c, err
	}
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			name := strings.TrimPrefix(pe.KeyName, envPrefix+"_")
			return c, &ConfigError{Var: name, Value: pe.Value, Want: want(name)}
		}
		return c, err
	}
	c.ConfigDir = cleanList(c.ConfigDir)
	c.ProcessName = cleanList(c.ProcessName)
	c.Include = cleanList(c.Include)
	c.Exclude = cleanList(c.Exclude)
	return c, nil
}

// want names what a variable accepts, for parse errors.
func want(name string) string {
	f, ok := fieldByVar(name)
	if !ok {
		return "see pollreload --help"
	}
	switch f.Type {
	case reflect.TypeFor[time.Duration]():
		return "want a Go duration such as 500ms, 2s or 1m"
	case reflect.TypeFor[bool]():
		return "want true or false"
	case reflect.TypeFor[int]():
		return "want a whole number"
	}
	return f.Tag.Get("desc")
}

func unknownVariables(environ []string) error {
	known := variables()
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, envPrefix+"_")
		if !ok || slices.Contains(known, rest) {
			continue
		}
		msg := "unknown variable " + name
		if near := closest(rest, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s_%s?)", envPrefix, near)
		}
		return errors.New(msg + "; see pollreload --help")
	}
	return nil
}

// Validate checks every setting without touching the system. wrapper is
// true when pollreload starts the application itself, which then needs no
// PROCESS_NAME, PID_FILE or RELOAD_URL.
func (c Config) Validate(wrapper bool) error {
	if len(c.ConfigDir) == 0 {
		return &ConfigError{Var: "CONFIG_DIR", Want: "want a comma-separated list of directories or files to watch"}
	}
	var targets []string
	for v, set := range map[string]bool{"PROCESS_NAME": len(c.ProcessName) > 0, "PID_FILE": c.PIDFile != "", "RELOAD_URL": c.ReloadURL != ""} {
		if set {
			targets = append(targets, v)
		}
	}
	slices.Sort(targets)
	switch {
	case wrapper && len(targets) > 0:
		return fmt.Errorf("%s cannot be used with wrapper mode (pollreload -- CMD): the reload goes to CMD", strings.Join(targets, ", "))
	case !wrapper && len(targets) == 0:
		return errors.New("no reload target: set PROCESS_NAME (or PID_FILE or RELOAD_URL), or start the application with pollreload -- CMD ARGS")
	case len(targets) > 1:
		return fmt.Errorf("set only one of %s", strings.Join(targets, ", "))
	}
	if _, err := signaler.ParseSignal(c.ReloadSignal); err != nil {
		return &ConfigError{Var: "RELOAD_SIGNAL", Value: c.ReloadSignal, Want: "want a signal name such as SIGHUP, HUP or hup, or a number from 1 to 64"}
	}
	for _, n := range c.ProcessName {
		if signaler.CheckName(n) != nil {
			return &ConfigError{Var: "PROCESS_NAME", Value: n, Want: "a name with / is matched as a path and must be absolute, such as /usr/sbin/nginx; otherwise want a base name such as nginx"}
		}
	}
	if _, err := signaler.ParsePolicy(c.ReloadTargets); err != nil {
		return &ConfigError{Var: "RELOAD_TARGETS", Value: c.ReloadTargets, Want: "want roots, all or oldest"}
	}
	if c.ReloadURL != "" {
		u, err := url.Parse(c.ReloadURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &ConfigError{Var: "RELOAD_URL", Value: redactURL(c.ReloadURL), Want: "want an absolute http:// or https:// URL"}
		}
	}
	if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH"}, c.ReloadMethod) {
		return &ConfigError{Var: "RELOAD_METHOD", Value: c.ReloadMethod, Want: "want GET, POST, PUT or PATCH"}
	}
	if c.ReloadTimeout <= 0 {
		return &ConfigError{Var: "RELOAD_TIMEOUT", Value: c.ReloadTimeout.String(), Want: "want a positive Go duration such as 5s"}
	}
	if c.PollInterval < minPollInterval {
		return &ConfigError{Var: "POLL_INTERVAL", Value: c.PollInterval.String(), Want: "want a Go duration of at least 100ms, such as 2s"}
	}
	if c.SettleTime < 0 {
		return &ConfigError{Var: "SETTLE_TIME", Value: c.SettleTime.String(), Want: "want a Go duration of 0 or more, such as 1s (0 disables settling)"}
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || !validPort(port) {
			return &ConfigError{Var: "METRICS_ADDR", Value: c.MetricsAddr, Want: "want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)"}
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &ConfigError{Var: "LOG_FORMAT", Value: c.LogFormat, Want: "want text or json"}
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return &ConfigError{Var: "LOG_LEVEL", Value: c.LogLevel, Want: "want debug, info, warn or error"}
	}
	if c.MaxFiles < 0 {
		return &ConfigError{Var: "MAX_FILES", Value: strconv.Itoa(c.MaxFiles), Want: "want a whole number of 0 or more (0: no limit)"}
	}
	if _, err := parseSize(c.MaxFileSize); err != nil {
		return &ConfigError{Var: "MAX_FILE_SIZE", Value: c.MaxFileSize, Want: "want a size in bytes such as 1048576, 64KiB, 10MiB or 1GiB (0: no limit)"}
	}
	for v, globs := range map[string][]string{"INCLUDE": c.Include, "EXCLUDE": c.Exclude} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return &ConfigError{Var: v, Value: g, Want: "want comma-separated globs such as *.conf or conf.d/*"}
			}
		}
	}
	if c.VerifyInterval < 0 {
		return &ConfigError{Var: "VERIFY_INTERVAL", Value: c.VerifyInterval.String(), Want: "want a Go duration of 0 or more, such as 10m (0 disables)"}
	}
	if c.HealthMissedScans < 1 {
		return &ConfigError{Var: "HEALTH_MISSED_SCANS", Value: strconv.Itoa(c.HealthMissedScans), Want: "want a whole number of 1 or more"}
	}
	return nil
}

// checkPaths makes sure every CONFIG_DIR entry exists and can be read now;
// later failures are treated as transient.
func (c Config) checkPaths() error {
	for _, p := range c.ConfigDir {
		if err := checkPath(p); err != nil {
			return err
		}
	}
	return checkPIDFile(c.PIDFile)
}

var logLevels = map[string]int{"debug": -4, "info": 0, "warn": 4, "error": 8}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

// parseSize reads a byte count with an optional binary suffix.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redactURL masks RELOAD_URL's secrets for errors (see signaler.RedactURL).
func redactURL(raw string) string { return signaler.RedactURL(raw) }

// variables lists the variable names of Config, in order.
func variables() []string {
	var names []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("envconfig"))
	}
	return names
}

func fieldByVar(name string) (reflect.StructField, bool) {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("envconfig") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// closest returns the known name within edit distance 2 of name, if any.
func closest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// usage prints the help text with the variable table.
func usage() string {
	var b strings.Builder
	b.WriteString(`pollreload polls configuration directories and reloads the application when
their content really changes (no inotify needed: works on NFS, FUSE, kubelet
ConfigMap/Secret volumes, under Pod Security "restricted").

Usage:
  pollreload                 watch CONFIG_DIR and reload the target (daemon)
  pollreload -- CMD ARGS...  start CMD as a child and reload it on change (wrapper)
  pollreload check           scan once, list the targets, and say what would fail
  pollreload hash PATH...    print the content digest and files of each PATH
  pollreload --version       print version, commit and Go version
  pollreload --help          print this help

Environment (each may also be given as POLLRELOAD_NAME, which wins):
`)
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		def := f.Tag.Get("default")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(&b, "  %-20s %-8s %s\n", f.Tag.Get("envconfig"), def, f.Tag.Get("desc"))
	}
	b.WriteString(`
Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or usage;
in wrapper mode, the child's exit code.
`)
	return b.String()
}
