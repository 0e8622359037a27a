// Package config is pollreload's configuration step: the environment and
// the drop-in flags become one typed Config (Load), checked whole before
// anything is built (Validate, then CheckPaths and CheckMetricsAddr for
// what needs the system), whose errors (*Error) name each variable as the
// user spelt it (Name), its value and what is accepted. It is the only
// package that names a variable or a pod-spec field: the libraries below
// it (hasher, signaler, verify, poller, metrics) return structured errors,
// and Fix maps their types to the fix a user reads, added where an error
// is logged (LogHandler) or printed (Explain).
//
// Use:
//
//	cfg, err := config.Load(os.Environ(), flags)
//	if err == nil {
//		err = cfg.Validate(false)
//	}
//	logger := slog.New(cfg.LogHandler(slog.NewTextHandler(os.Stderr, nil)))
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
)

// envPrefix is the project's own prefix. Every variable can also be given
// as POLLRELOAD_NAME, which wins over NAME. A POLLRELOAD_ variable that is
// a near-miss of a known name is a startup error, so a typo cannot silently
// fall back to a default; other unknown names are not (see unknownVariables).
const envPrefix = "POLLRELOAD"

// Bounds of the settings. The upper ones keep products such as
// HEALTH_MISSED_SCANS × POLL_INTERVAL far from overflowing a time.Duration.
const (
	// minPollInterval keeps a misconfigured sidecar from hammering a
	// shared filesystem.
	minPollInterval   = 100 * time.Millisecond
	maxPollInterval   = 24 * time.Hour
	maxSettleTime     = 24 * time.Hour
	maxReloadTimeout  = time.Hour
	maxVerifyInterval = 7 * 24 * time.Hour
	maxMissedScans    = 1000
)

// Config is pollreload's whole configuration, read once from the
// environment (and the drop-in flags, see flags.go). The first three
// variables are config-reloader-sidecar's, with the same meaning.
type Config struct {
	ConfigDir             []string      `envconfig:"CONFIG_DIR" desc:"comma-separated directories (or single files) to watch; required"`
	ProcessName           []string      `envconfig:"PROCESS_NAME" desc:"name(s) of the process to signal, matched against argv[0]'s and the executable's base name, and comm for names of at most 15 bytes; a name with / is an absolute path matched against argv[0] and the executable"`
	ReloadSignal          SignalValue   `envconfig:"RELOAD_SIGNAL" default:"SIGHUP" desc:"signal to send: SIGHUP, HUP, hup or a number from 1 to 31"`
	PIDFile               string        `envconfig:"PID_FILE" desc:"file holding the PID to signal, re-read on every reload (instead of PROCESS_NAME)"`
	ReloadTargets         PolicyValue   `envconfig:"RELOAD_TARGETS" default:"roots" desc:"which matches to signal: roots (matches whose parent is not a match), all, oldest"`
	ReloadForce           bool          `envconfig:"RELOAD_FORCE" default:"false" desc:"signal even a process that does not catch the signal (its default action may kill it)"`
	ReloadURL             string        `envconfig:"RELOAD_URL" desc:"comma-separated HTTP(S) endpoints to call on change; alone, or with PROCESS_NAME or PID_FILE to signal the app and notify webhooks"`
	ReloadMethod          string        `envconfig:"RELOAD_METHOD" default:"POST" desc:"HTTP method for RELOAD_URL: GET, POST, PUT or PATCH"`
	ReloadTimeout         time.Duration `envconfig:"RELOAD_TIMEOUT" default:"5s" desc:"timeout of one RELOAD_URL request, and how long a delivered reload may take to be verified (at most 1h)"`
	ReloadVerifyURL       string        `envconfig:"RELOAD_VERIFY_URL" desc:"the app's Prometheus metrics URL: a reload counts once its *_config_last_reload_success_timestamp_seconds moves, and is rejected when *_config_last_reload_successful reads 0"`
	ReloadVerifyMetric    string        `envconfig:"RELOAD_VERIFY_METRIC" desc:"name of the *_last_reload_successful or *_last_reload_success_timestamp_seconds gauge at RELOAD_VERIFY_URL (default: found by the _config_ suffix)"`
	ReloadVerify          string        `envconfig:"RELOAD_VERIFY" desc:"children: a master/worker server (nginx, haproxy -W, gunicorn) must replace its workers within RELOAD_TIMEOUT, or the reload counts as rejected; exec: a server that re-executes itself in place (sshd, the uwsgi and haproxy masters) must do so and still run"`
	ReloadVerifyCommand   string        `envconfig:"RELOAD_VERIFY_COMMAND" desc:"command asking the app for its verdict, run before the delivery and after it until RELOAD_TIMEOUT: exit 0 accepted, 1 rejected (its output is the reason), anything else not yet; split into words without a shell (see RELOAD_VERIFY_SHELL)"`
	ReloadVerifyShell     bool          `envconfig:"RELOAD_VERIFY_SHELL" default:"false" desc:"run RELOAD_VERIFY_COMMAND with /bin/sh -c (needs /bin/sh in the image)"`
	VerifyLog             string        `envconfig:"RELOAD_VERIFY_LOG" desc:"the app's log file: after a delivery its new lines are read; one matching RELOAD_VERIFY_LOG_FAILURE is a rejection, one matching RELOAD_VERIFY_LOG_SUCCESS a success"`
	VerifyLogSuccess      string        `envconfig:"RELOAD_VERIFY_LOG_SUCCESS" desc:"regular expression (Go syntax) of the log line that says the reload was accepted; required with RELOAD_VERIFY_LOG"`
	VerifyLogFailure      string        `envconfig:"RELOAD_VERIFY_LOG_FAILURE" desc:"regular expression (Go syntax) of the log line that says the reload was refused; required with RELOAD_VERIFY_LOG"`
	ReloadCheckCommand    string        `envconfig:"RELOAD_CHECK_COMMAND" desc:"command run once new content is stable and before any target is signalled or called, such as nginx -t -c /etc/nginx/nginx.conf: exit 0 delivers, another exit status rejects the content (nothing is sent until it changes); split into words without a shell (see RELOAD_CHECK_SHELL)"`
	ReloadCheckShell      bool          `envconfig:"RELOAD_CHECK_SHELL" default:"false" desc:"run RELOAD_CHECK_COMMAND with /bin/sh -c, for pipes, variables and other shell syntax (needs /bin/sh in the image)"`
	ReloadCheckTimeout    time.Duration `envconfig:"RELOAD_CHECK_TIMEOUT" default:"30s" desc:"how long RELOAD_CHECK_COMMAND may run (1ms to 1h); past it its process group is killed, nothing is delivered and the check is retried with backoff"`
	App                   string        `envconfig:"RELOAD_APP" desc:"the application reloaded (nginx, apache, sshd, gunicorn, uwsgi, postgresql, pgbouncer, haproxy, prometheus, mariadb): its signal, check and verification; default: recognised from the target's executable"`
	AppStatus             string        `envconfig:"RELOAD_APP_STATUS" desc:"where the application's verdict is read when its command line does not say: apache's server-status URL, haproxy's master CLI socket, uwsgi's stats address"`
	AppDSNFile            string        `envconfig:"RELOAD_APP_DSN_FILE" desc:"postgresql: file holding the connection string (libpq key=value or URL, may hold the password) to read pg_conf_load_time() and pg_file_settings; default: the postmaster's -k socket as user postgres"`
	BearerTokenFile       string        `envconfig:"RELOAD_BEARER_TOKEN_FILE" desc:"file with a bearer token for RELOAD_URL and RELOAD_VERIFY_URL, re-read on every request"`
	BasicAuthUsername     string        `envconfig:"RELOAD_BASIC_AUTH_USERNAME" desc:"basic auth user for RELOAD_URL and RELOAD_VERIFY_URL (with RELOAD_BASIC_AUTH_PASSWORD_FILE)"`
	BasicAuthPasswordFile string        `envconfig:"RELOAD_BASIC_AUTH_PASSWORD_FILE" desc:"file with the basic auth password, re-read on every request"`
	CAFile                string        `envconfig:"RELOAD_CA_FILE" desc:"PEM CA bundle to verify HTTPS servers with (default: the system's)"`
	CertFile              string        `envconfig:"RELOAD_CERT_FILE" desc:"PEM client certificate for mTLS (with RELOAD_KEY_FILE)"`
	KeyFile               string        `envconfig:"RELOAD_KEY_FILE" desc:"PEM key of RELOAD_CERT_FILE"`
	ReloadHeaders         string        `envconfig:"RELOAD_HEADERS" desc:"extra request headers, comma-separated Name: value pairs (values are never logged)"`
	ReloadOnStart         bool          `envconfig:"RELOAD_ON_START" default:"false" desc:"reload once after the first scan (normally the first scan is only the baseline)"`
	PollInterval          time.Duration `envconfig:"POLL_INTERVAL" default:"2s" desc:"time between scans (Go duration, 100ms to 24h)"`
	SettleTime            time.Duration `envconfig:"SETTLE_TIME" default:"1s" desc:"plain trees: new content must stay the same this long (at most 24h) before a reload; kubelet volumes are atomic and never wait"`
	MetricsAddr           string        `envconfig:"METRICS_ADDR" default:":9533" desc:"listen address for /metrics, /healthz, /readyz; its host must resolve; empty disables"`
	LogFormat             string        `envconfig:"LOG_FORMAT" default:"text" desc:"log format on stderr: text (or logfmt, the same) or json"`
	LogLevel              string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	Verbose               bool          `envconfig:"VERBOSE" default:"false" desc:"true means LOG_LEVEL=debug (config-reloader-sidecar's variable); an explicit LOG_LEVEL wins"`
	MaxFiles              int           `envconfig:"MAX_FILES" default:"100000" desc:"most regular files per watched path, and most other entries (directories, links, special files); more is an error (0: no limit)"`
	MaxFileSize           ByteSize      `envconfig:"MAX_FILE_SIZE" default:"64MiB" desc:"largest file to hash, 64 times Kubernetes' 1 MiB cap on a ConfigMap or Secret: bytes, or with KiB/Ki, MiB/Mi, GiB/Gi, TiB/Ti (binary) or k, M, G, T (decimal); a larger file is not read (0: no limit)"`
	MaxTotalSize          ByteSize      `envconfig:"MAX_TOTAL_SIZE" default:"256MiB" desc:"most bytes of all files of a watched path, so a scan never reads more; more is an error (0: no limit); units as MAX_FILE_SIZE"`
	MaxDepth              int           `envconfig:"MAX_DEPTH" default:"32" desc:"most directory levels below a watched path; a deeper directory is not walked and is an error naming it (0: no limit)"`
	Include               []string      `envconfig:"INCLUDE" desc:"comma-separated globs (** spans directories); if set, only matching files count (matched against the relative path and the base name)"`
	Exclude               []string      `envconfig:"EXCLUDE" desc:"comma-separated globs (** spans directories) of files and directories to ignore"`
	VerifyInterval        time.Duration `envconfig:"VERIFY_INTERVAL" default:"10m" desc:"re-read files whose stat looks unchanged after at most this long (each process draws between half of it and all of it; at most 168h), to catch rewrites stat cannot show (same size and mtime on a filesystem without ctime, such as sshfs); 0 disables"`
	HealthMissedScans     int           `envconfig:"HEALTH_MISSED_SCANS" default:"3" desc:"/healthz fails after a scan runs this many intervals (1 to 1000)"`

	// given maps a variable to the name it was given as: NAME,
	// POLLRELOAD_NAME or a flag such as --watched-dir. A variable that is
	// not in it was not given and holds its default.
	given map[string]string
	// ignored lists the POLLRELOAD_ variables that pollreload does not know
	// and are not Kubernetes service links, for one warning at start.
	ignored []string
	// notes are the drop-in flags accepted without effect, for one log line.
	notes []string
	// merged lists the CONFIG_DIR and RELOAD_URL entries given more than
	// once, each kept once, for one warning at start.
	merged []string
	// environ is the environment the configuration was read from: the
	// check command's, less pollreload's own variables (checkEnv).
	environ []string
}

// SignalValue is RELOAD_SIGNAL, parsed once.
type SignalValue syscall.Signal

// Decode implements envconfig.Decoder.
func (s *SignalValue) Decode(v string) error {
	sig, err := signaler.ParseSignal(v)
	if err != nil {
		// signaler says why ("cannot be caught", the accepted range); the
		// variable's name and value are added by Error.
		var se *signaler.SignalError
		if errors.As(err, &se) {
			return wantError(se.Want)
		}
		return err
	}
	*s = SignalValue(sig)
	return nil
}

// Signal returns the signal.
func (s SignalValue) Signal() syscall.Signal { return syscall.Signal(s) }

// PolicyValue is RELOAD_TARGETS, parsed once.
type PolicyValue signaler.Policy

// Decode implements envconfig.Decoder.
func (p *PolicyValue) Decode(v string) error {
	pol, err := signaler.ParsePolicy(v)
	if err != nil || strings.TrimSpace(v) == "" {
		return wantError("want roots, all or oldest")
	}
	*p = PolicyValue(pol)
	return nil
}

// ByteSize is MAX_FILE_SIZE or MAX_TOTAL_SIZE, parsed once.
type ByteSize int64

// Decode implements envconfig.Decoder.
func (b *ByteSize) Decode(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return wantError("want a size in bytes such as 1048576, 64KiB, 10Mi, 1Gi or 1M (0: no limit)")
	}
	*b = ByteSize(n)
	return nil
}

// wantError is what a setting accepts, returned by the Decoders so that
// Load can put it in an *Error.
type wantError string

func (e wantError) Error() string { return string(e) }

// Error is an invalid setting: one line that names the variable as
// the user gave it, the value and what is accepted.
type Error struct {
	Var   string
	Value string
	Want  string
	// Empty is set when Var is set to the empty string, which is not the
	// same as not set.
	Empty bool
}

func (e *Error) Error() string {
	switch {
	case e.Value == "" && e.Empty:
		return fmt.Sprintf("%s is set but empty: %s", e.Var, e.Want)
	case e.Value == "":
		return fmt.Sprintf("%s is not set: %s", e.Var, e.Want)
	}
	return fmt.Sprintf("invalid %s=%q: %s", e.Var, e.Value, e.Want)
}

// Name returns how variable v was given (NAME, POLLRELOAD_NAME or a flag
// such as --watched-dir), v itself if it was not: what errors, logs and
// fixes call it.
func (c Config) Name(v string) string {
	if n, ok := c.given[v]; ok {
		return n
	}
	return v
}

// Given reports whether variable v was set (by the environment or a flag);
// a variable that was not holds its default.
func (c Config) Given(v string) bool {
	_, ok := c.given[v]
	return ok
}

// Ignored lists the POLLRELOAD_ variables pollreload does not know and
// that are not Kubernetes service links, for one warning at start.
func (c Config) Ignored() []string { return c.ignored }

// Notes lists the drop-in flags accepted without effect, for one log line.
func (c Config) Notes() []string { return c.notes }

// Merged lists the CONFIG_DIR and RELOAD_URL entries given more than once
// (URLs masked), each kept once, for one warning at start.
func (c Config) Merged() []string { return c.merged }

// CommandEnv is the environment of the commands pollreload runs (the
// check, the verify command, a profile's check): the environment the
// configuration was read from, less every variable pollreload reads.
func (c Config) CommandEnv() []string { return checkEnv(c.environ) }

// Level is LOG_LEVEL's level.
func (c Config) Level() slog.Level { return slog.Level(logLevels[c.LogLevel]) }

// configErr is an *Error for variable v that names it as given.
func (c Config) configErr(v, value, want string) *Error {
	_, set := c.given[v]
	return &Error{Var: c.Name(v), Value: value, Want: want, Empty: set && value == ""}
}

// Load reads the environment once, then applies the drop-in flags,
// which win (see ParseFlags). environ is the process environment, the one
// envconfig reads.
func Load(environ []string, flags []FlagSetting) (Config, error) {
	var c Config
	c.environ = environ
	ignored, err := unknownVariables(environ)
	if err != nil {
		return c, err
	}
	c.ignored = ignored
	c.given = givenNames(environ)
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			name := strings.TrimPrefix(pe.KeyName, envPrefix+"_")
			return c, c.configErr(name, pe.Value, want(name, pe.Err))
		}
		return c, err
	}
	if err := c.applyFlags(flags); err != nil {
		return c, err
	}
	c.ConfigDir = cleanList(c.ConfigDir)
	var dups []string
	c.ConfigDir, dups = mergeDuplicates(c.ConfigDir, filepath.Clean)
	for _, d := range dups {
		c.merged = append(c.merged, c.Name("CONFIG_DIR")+"="+d)
	}
	if urls := c.ReloadURLs(); len(urls) > 1 {
		kept, dups := mergeDuplicates(urls, func(s string) string { return s })
		if len(dups) > 0 {
			c.ReloadURL = strings.Join(kept, ",")
			for _, d := range dups {
				c.merged = append(c.merged, c.Name("RELOAD_URL")+"="+redactURL(d))
			}
		}
	}
	c.ProcessName = cleanList(c.ProcessName)
	c.Include = cleanList(c.Include)
	c.Exclude = cleanList(c.Exclude)
	if c.LogFormat == "logfmt" {
		c.LogFormat = "text" // prometheus-config-reloader's name for the same format
	}
	if _, explicit := c.given["LOG_LEVEL"]; c.Verbose && !explicit {
		c.LogLevel = "debug"
	}
	return c, nil
}

// givenNames maps each variable set in environ to the name it was given as.
func givenNames(environ []string) map[string]string {
	given := map[string]string{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		v, prefixed := strings.CutPrefix(name, envPrefix+"_")
		if _, ok := fieldByVar(v); !ok {
			continue
		}
		if _, seen := given[v]; !seen || prefixed {
			given[v] = name
		}
	}
	return given
}

// want names what a variable accepts, for parse errors.
func want(name string, err error) string {
	var w wantError
	if errors.As(err, &w) {
		return string(w)
	}
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

// serviceLink matches the variables Kubernetes injects for every Service in
// the namespace (enableServiceLinks), once the Service's name is cut off:
// SERVICE_HOST, SERVICE_PORT, SERVICE_PORT_<NAME>, PORT, PORT_<N>_TCP and
// PORT_<N>_TCP_PROTO/_PORT/_ADDR (and UDP, SCTP). A Service named
// pollreload-metrics gives POLLRELOAD_METRICS_SERVICE_HOST, hence the
// optional leading part.
var serviceLink = regexp.MustCompile(`^([A-Z0-9_]+_)?(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

// unknownVariables looks at the POLLRELOAD_ variables pollreload does not
// know. A near-miss of a known name (POLLRELOAD_POLL_INTERVALL) is an error:
// the user meant to configure something. Kubernetes service links are
// silently ignored, and any other name (POLLRELOAD_BIN, exported by a
// script) is returned for one warning: the environment is not all ours.
func unknownVariables(environ []string) (ignored []string, err error) {
	known := Variables()
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, envPrefix+"_")
		if !ok || slices.Contains(known, rest) || serviceLink.MatchString(rest) {
			continue
		}
		if near := closest(rest, known); near != "" {
			return nil, fmt.Errorf("unknown variable %s (did you mean %s_%s?); see pollreload --help", name, envPrefix, near)
		}
		ignored = append(ignored, name)
	}
	slices.Sort(ignored)
	return ignored, nil
}

// Validate checks every setting without touching the system. wrapper is
// true when pollreload starts the application itself, which then needs no
// PROCESS_NAME, PID_FILE or RELOAD_URL.
func (c Config) Validate(wrapper bool) error {
	if len(c.ConfigDir) == 0 {
		return c.configErr("CONFIG_DIR", "", "want a comma-separated list of directories or files to watch")
	}
	var targets []string
	for v, set := range map[string]bool{"PROCESS_NAME": len(c.ProcessName) > 0, "PID_FILE": c.PIDFile != "", "RELOAD_URL": c.ReloadURL != ""} {
		if set {
			targets = append(targets, c.Name(v))
		}
	}
	slices.Sort(targets)
	switch {
	case wrapper && len(targets) > 0:
		return fmt.Errorf("%s cannot be used with wrapper mode (pollreload -- CMD): the reload goes to CMD", strings.Join(targets, ", "))
	case !wrapper && len(targets) == 0:
		return errors.New("no reload target: set PROCESS_NAME (or PID_FILE or RELOAD_URL), or start the application with pollreload -- CMD ARGS")
	case len(c.ProcessName) > 0 && c.PIDFile != "":
		// RELOAD_URL may go with either, to signal the app and notify webhooks.
		return fmt.Errorf("set only one of %s, %s", c.Name("PID_FILE"), c.Name("PROCESS_NAME"))
	}
	for _, n := range c.ProcessName {
		if signaler.CheckName(n) != nil {
			return c.configErr("PROCESS_NAME", n, "a name with / is matched as a path and must be absolute, such as /usr/sbin/nginx; otherwise want a base name such as nginx")
		}
	}
	if err := c.validateSources(); err != nil {
		return err
	}
	if err := c.validateVerify(wrapper); err != nil {
		return err
	}
	if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH"}, c.ReloadMethod) {
		return c.configErr("RELOAD_METHOD", c.ReloadMethod, "want GET, POST, PUT or PATCH")
	}
	if c.ReloadTimeout <= 0 || c.ReloadTimeout > maxReloadTimeout {
		return c.configErr("RELOAD_TIMEOUT", c.ReloadTimeout.String(), "want a Go duration above 0 and at most 1h, such as 5s")
	}
	if c.PollInterval < minPollInterval || c.PollInterval > maxPollInterval {
		return c.configErr("POLL_INTERVAL", c.PollInterval.String(), "want a Go duration from 100ms to 24h, such as 2s")
	}
	if c.SettleTime < 0 || c.SettleTime > maxSettleTime {
		return c.configErr("SETTLE_TIME", c.SettleTime.String(), "want a Go duration from 0 to 24h, such as 1s (0 disables settling)")
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || !validPort(port) {
			return c.configErr("METRICS_ADDR", c.MetricsAddr, "want host:port or :port, such as :9533 or 127.0.0.1:9533 (empty disables)")
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return c.configErr("LOG_FORMAT", c.LogFormat, "want text, logfmt or json")
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return c.configErr("LOG_LEVEL", c.LogLevel, "want debug, info, warn or error")
	}
	if c.HealthMissedScans < 1 || c.HealthMissedScans > maxMissedScans {
		return c.configErr("HEALTH_MISSED_SCANS", strconv.Itoa(c.HealthMissedScans), "want a whole number from 1 to 1000")
	}
	return c.ValidateScan()
}

// validateScan checks the settings of the hasher alone, which is all that
// pollreload hash needs.
func (c Config) ValidateScan() error {
	if c.MaxFiles < 0 {
		return c.configErr("MAX_FILES", strconv.Itoa(c.MaxFiles), "want a whole number of 0 or more (0: no limit)")
	}
	if c.MaxDepth < 0 {
		return c.configErr("MAX_DEPTH", strconv.Itoa(c.MaxDepth), "want a whole number of 0 or more (0: no limit)")
	}
	for _, list := range []struct {
		v     string
		globs []string
	}{{"INCLUDE", c.Include}, {"EXCLUDE", c.Exclude}} {
		for _, g := range list.globs {
			if err := hasher.ValidateGlobs([]string{g}); err != nil {
				return c.configErr(list.v, g, "want comma-separated globs such as *.conf, conf.d/* or **/*.pem")
			}
		}
	}
	if c.VerifyInterval < 0 || c.VerifyInterval > maxVerifyInterval {
		return c.configErr("VERIFY_INTERVAL", c.VerifyInterval.String(), "want a Go duration from 0 to 168h, such as 10m (0 disables)")
	}
	return nil
}

// checkMetricsAddr resolves METRICS_ADDR's host at start, so that a name
// that can never be bound is a configuration error (exit 2), not a
// runtime failure later. Names under .invalid never resolve (RFC 6761)
// and are refused without a lookup.
func (c Config) CheckMetricsAddr(ctx context.Context) error {
	host, _, err := net.SplitHostPort(c.MetricsAddr)
	if c.MetricsAddr == "" || err != nil || host == "" || net.ParseIP(host) != nil {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "invalid" || strings.HasSuffix(h, ".invalid") {
		return c.configErr("METRICS_ADDR", c.MetricsAddr, "the host does not resolve (.invalid is reserved, RFC 6761); want host:port with a resolvable host or an IP, such as :9533 or 127.0.0.1:9533")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		return c.configErr("METRICS_ADDR", c.MetricsAddr, fmt.Sprintf("the host does not resolve (%v); want host:port with a resolvable host or an IP, such as :9533 or 127.0.0.1:9533", err))
	}
	return nil
}

// checkPaths makes sure every CONFIG_DIR entry, every credential file and
// the PID file's directory can be read now; later failures are treated as
// transient.
func (c Config) CheckPaths() error {
	for _, p := range c.ConfigDir {
		if err := c.checkPath(p); err != nil {
			return err
		}
	}
	if err := c.checkCredentialFiles(); err != nil {
		return err
	}
	return c.checkPIDFile(c.PIDFile)
}

var logLevels = map[string]int{"debug": -4, "info": 0, "warn": 4, "error": 8}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

// sizeUnits are the suffixes parseSize accepts: IEC binary ones, with or
// without the B (KiB, Ki), and the decimal ones of Kubernetes quantities
// (k, M, G, T). "MB" is refused: people use it for both 10^6 and 2^20.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
	{"B", 1},
}

// parseSize reads a byte count with an optional unit (see sizeUnits).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
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

// mergeDuplicates keeps the first of the entries with the same key, in
// order, and returns the entries that were given more than once (each
// once). Watching one path twice would hash it twice per tick and log each
// change twice; one URL twice would reload the app twice per change.
func mergeDuplicates(in []string, key func(string) string) (out, dups []string) {
	seen := make(map[string]int, len(in))
	for _, s := range in {
		k := key(s)
		n := seen[k]
		seen[k] = n + 1
		switch n {
		case 0:
			out = append(out, s)
		case 1:
			dups = append(dups, s)
		}
	}
	return out, dups
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
func Variables() []string {
	var names []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if v := t.Field(i).Tag.Get("envconfig"); v != "" {
			names = append(names, v)
		}
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

// usage prints the help text with the variable and flag tables.
func Usage() string {
	var b strings.Builder
	b.WriteString(`pollreload polls configuration directories and reloads the application when
their content really changes (no inotify needed: works on NFS, FUSE, kubelet
ConfigMap/Secret volumes, under Pod Security "restricted").

Usage:
  pollreload                 watch CONFIG_DIR and reload the target (daemon)
  pollreload FLAGS...        the same, configured by drop-in flags (below)
  pollreload -- CMD ARGS...  start CMD as a child and reload it on change (wrapper)
  pollreload check [FLAGS]   scan once, list the targets, and say what would fail
  pollreload hash PATH...    print the content digest and files of each PATH
  pollreload copy DEST       copy this binary to DEST and run the copy (the init
                             container of wrapper mode in a pod)
  pollreload --version       print version, commit and Go version
  pollreload --help          print this help

Environment (each may also be given as POLLRELOAD_NAME, which wins):
`)
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		v := f.Tag.Get("envconfig")
		if v == "" {
			continue
		}
		def := f.Tag.Get("default")
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(&b, "  %-20s %-8s %s\n", v, def, f.Tag.Get("desc"))
	}
	b.WriteString(flagUsage())
	b.WriteString(`
Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or usage;
in wrapper mode, the child's exit code (128+N if signal N killed it), 127 when
CMD is not found and 126 when it cannot be executed.
`)
	return b.String()
}
