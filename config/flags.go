package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// This file maps the command-line flags of prometheus-config-reloader and
// configmap-reload onto pollreload's variables, so that an existing
// manifest switches to pollreload by changing its image and nothing else.
//
// A flag wins over the environment: a container's args are written for
// that container, while its environment is partly inherited (envFrom, the
// image's ENV, service links); both tools behave that way too (kingpin and
// Go's flag package read no environment).

// ErrUsage is wrapped by the errors of the command line itself: an
// unknown flag, a flag without its value (exit code 2).
var ErrUsage = errors.New("usage")

// usageErr is an error of the command line.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
}

// FlagSetting is one variable set by a flag.
type FlagSetting struct {
	Var   string // the variable, such as CONFIG_DIR; "" for a flag accepted without effect
	Flag  string // the flag as written, such as --watched-dir
	Value string
	// Default is set for a value the flags imply without naming it
	// (--reload-method=signal's PROCESS_NAME=prometheus): it applies only
	// when the environment does not set the variable.
	Default bool
}

// dropInFlag is one accepted flag.
type dropInFlag struct {
	name string // without dashes
	from string // the tool it comes from
	v    string // the variable it sets; "" when handled by ParseFlags itself
	help string
}

const (
	fromPCR = "prometheus-config-reloader"
	fromCMR = "configmap-reload"
)

var dropInFlags = []dropInFlag{
	{"watched-dir", fromPCR, "CONFIG_DIR", "a directory to watch; repeatable"},
	{"config-file", fromPCR, "CONFIG_DIR", "a file to watch; refused with --config-envsubst-file (no rendering)"},
	{"config-envsubst-file", fromPCR, "", "refused: pollreload does not render configuration"},
	{"reload-url", fromPCR, "RELOAD_URL", "once: given twice, or with --webhook-url, is refused"},
	{"reload-method", fromPCR, "", "http (default: --reload-url) or signal (SIGHUP to --process-executable-name)"},
	{"process-executable-name", fromPCR, "", "with --reload-method=signal: PROCESS_NAME (default prometheus)"},
	{"listen-address", fromPCR, "METRICS_ADDR", ""},
	{"watch-interval", fromPCR, "POLL_INTERVAL", "0 (run once) is refused"},
	{"delay-interval", fromPCR, "SETTLE_TIME", ""},
	{"retry-interval", fromPCR, "", "accepted, no effect: retries run every 1s, backing off to 30s"},
	{"reload-timeout", fromPCR, "RELOAD_TIMEOUT", ""},
	{"log-format", fromPCR, "LOG_FORMAT", "logfmt or json"},
	{"log-level", fromPCR, "LOG_LEVEL", ""},
	{"web-config-file", fromPCR, "", "refused: /metrics has no TLS or authentication"},
	{"runtimeinfo-url", fromPCR, "", "accepted, no effect"},
	{"statefulset-ordinal-from-envvar", fromPCR, "", "accepted, no effect (only used for rendering)"},
	{"auto-gomemlimit-ratio", fromPCR, "", "accepted, no effect: set GOMEMLIMIT"},
	{"volume-dir", fromCMR, "CONFIG_DIR", "a directory to watch; repeatable"},
	{"webhook-url", fromCMR, "RELOAD_URL", "repeatable: each URL is a target of its own"},
	{"webhook-method", fromCMR, "RELOAD_METHOD", ""},
	{"webhook-status-code", fromCMR, "", "a 2xx code: any 2xx counts as success"},
	{"webhook-retries", fromCMR, "", "accepted, no effect: retries run until delivered"},
	{"web.listen-address", fromCMR, "METRICS_ADDR", ""},
	{"web.telemetry-path", fromCMR, "", "only /metrics"},
}

func lookupFlag(name string) (dropInFlag, bool) {
	for _, f := range dropInFlags {
		if f.name == name {
			return f, true
		}
	}
	return dropInFlag{}, false
}

// ParseFlags reads drop-in flags up to a "--", written as --name=value,
// --name value, -name=value or -name value (kingpin and Go's flag package
// accept these). It returns the settings and what follows "--", if any.
// An unknown flag or a stray argument is a usage error (exit 2); a flag
// pollreload cannot honour is a configuration error naming the alternative.
func ParseFlags(args []string) (settings []FlagSetting, rest []string, err error) {
	var (
		values  = map[string][]string{} // flag name → values, in order
		written = map[string]string{}   // flag name → as written
		order   []string
	)
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = args[i+1:]
			if len(rest) == 0 {
				return nil, nil, usageErr("-- needs a command to run, as in pollreload -- nginx -g 'daemon off;'")
			}
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		f, ok := lookupFlag(name)
		if !strings.HasPrefix(arg, "-") || !ok {
			return nil, nil, usageErr("unknown argument %q; see pollreload --help", arg)
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, usageErr("%s needs a value, as in %s=VALUE", arg, arg)
			}
			i++
			value = args[i]
		}
		if _, seen := values[f.name]; !seen {
			order = append(order, f.name)
		}
		values[f.name] = append(values[f.name], value)
		written[f.name] = strings.SplitN(arg, "=", 2)[0]
	}
	last := func(name string) (string, bool) {
		vs := values[name]
		if len(vs) == 0 {
			return "", false
		}
		return vs[len(vs)-1], true
	}
	refuse := func(name, value, want string) error {
		return &Error{Var: written[name], Value: value, Want: want, Empty: value == ""}
	}
	if err := refuseRepeats(order, values, written); err != nil {
		return nil, nil, err
	}

	if v, ok := last("config-envsubst-file"); ok {
		return nil, nil, refuse("config-envsubst-file", v, "pollreload does not render configuration (environment substitution, gunzip); "+
			"keep prometheus-config-reloader for rendering, or render it in an init container, and point --watched-dir (or CONFIG_DIR) at the rendered directory")
	}
	if v, ok := last("web-config-file"); ok {
		return nil, nil, refuse("web-config-file", v, "pollreload serves /metrics without TLS or authentication; "+
			"listen on 127.0.0.1 (--listen-address=127.0.0.1:8080) behind a proxy such as kube-rbac-proxy, or disable it with --listen-address=")
	}
	if v, ok := last("watch-interval"); ok {
		if d, err := time.ParseDuration(v); err == nil && d == 0 {
			return nil, nil, refuse("watch-interval", v, "pollreload has no run-once mode (prometheus-operator's init-config-reloader renders configuration, which pollreload does not do); want a Go duration of at least 100ms, such as 2s")
		}
	}
	if urls := values["webhook-url"]; len(urls) > 1 {
		// configmap-reload calls every --webhook-url; so does pollreload,
		// each as a target of its own (RELOAD_URL is a comma-separated list).
		for _, u := range urls {
			if strings.Contains(u, ",") {
				return nil, nil, refuse("webhook-url", redactURL(u), "with several --webhook-url flags, a URL cannot hold a comma (RELOAD_URL is a comma-separated list); escape it as %2C")
			}
		}
		values["webhook-url"] = []string{strings.Join(urls, ",")}
	}
	if v, ok := last("webhook-status-code"); ok {
		if n, err := strconv.Atoi(v); err != nil || n < 200 || n > 299 {
			return nil, nil, refuse("webhook-status-code", v, "want a 2xx status code; pollreload counts any 2xx answer as success")
		}
	}
	if v, ok := last("web.telemetry-path"); ok && v != "/metrics" {
		return nil, nil, refuse("web.telemetry-path", v, "pollreload serves metrics on /metrics only")
	}
	if v, ok := last("retry-interval"); ok {
		if _, err := time.ParseDuration(v); err != nil {
			return nil, nil, refuse("retry-interval", v, "want a Go duration such as 5s")
		}
	}
	method, _ := last("reload-method")
	switch method {
	case "", "http":
	case "signal":
		name, ok := last("process-executable-name")
		if !ok {
			// prometheus-config-reloader's default, unless the environment
			// names the process: a PROCESS_NAME set on purpose wins over a
			// default nobody wrote.
			settings = append(settings, FlagSetting{Var: "PROCESS_NAME", Flag: written["reload-method"], Value: "prometheus", Default: true})
			break
		}
		settings = append(settings, FlagSetting{Var: "PROCESS_NAME", Flag: written["process-executable-name"], Value: name})
	default:
		return nil, nil, refuse("reload-method", method, "want http or signal")
	}

	for _, name := range order {
		f, _ := lookupFlag(name)
		if f.v == "" {
			if name != "reload-method" && (name != "process-executable-name" || method != "signal") {
				settings = append(settings, FlagSetting{Flag: written[name], Value: last1(values[name])})
			}
			continue
		}
		for _, v := range values[name] {
			settings = append(settings, FlagSetting{Var: f.v, Flag: written[name], Value: v})
		}
	}
	return settings, rest, nil
}

// repeatableFlags may be given several times: each adds a watched path or a
// webhook target, as in the tools they come from.
var repeatableFlags = map[string]bool{"watched-dir": true, "volume-dir": true, "webhook-url": true}

// refuseRepeats refuses a flag that names one value given twice, and two
// flags setting the same single-valued variable (--reload-url with
// --webhook-url, --listen-address with --web.listen-address): the last one
// would win and the other be dropped without a word. prometheus-config-
// reloader (kingpin) refuses a repeated --reload-url the same way.
func refuseRepeats(order []string, values map[string][]string, written map[string]string) error {
	byVar := map[string]string{} // variable → first flag that sets it
	for _, name := range order {
		f, _ := lookupFlag(name)
		if len(values[name]) > 1 && !repeatableFlags[name] {
			return usageErr("%s is given %d times; it takes one value (for several reload endpoints, set RELOAD_URL to a comma-separated list)", written[name], len(values[name]))
		}
		if f.v == "" || f.v == "CONFIG_DIR" {
			continue // CONFIG_DIR is a list: every --watched-dir, --volume-dir and --config-file adds to it
		}
		if other, ok := byVar[f.v]; ok {
			return usageErr("%s and %s both set %s; give one of them (for several reload endpoints, set RELOAD_URL to a comma-separated list)", written[other], written[name], f.v)
		}
		byVar[f.v] = name
	}
	return nil
}

// applyFlags sets the variables the flags name, over what the environment
// said. A list variable (CONFIG_DIR) takes every value of its flags; any
// other takes the last. A setting without a variable is a flag accepted
// without effect, noted for one log line.
func (c *Config) applyFlags(flags []FlagSetting) error {
	fromFlags := map[string]bool{}
	rv := reflect.ValueOf(c).Elem()
	for _, s := range flags {
		if s.Var == "" {
			c.notes = append(c.notes, s.Flag)
			continue
		}
		if _, fromEnv := c.given[s.Var]; s.Default && fromEnv && !fromFlags[s.Var] {
			continue
		}
		sf, ok := fieldByVar(s.Var)
		if !ok {
			return fmt.Errorf("flag %s sets unknown variable %s", s.Flag, s.Var)
		}
		field := rv.FieldByIndex(sf.Index)
		if !fromFlags[s.Var] && field.Kind() == reflect.Slice {
			field.Set(reflect.Zero(field.Type())) // flags replace the environment's list
		}
		fromFlags[s.Var] = true
		c.given[s.Var] = s.Flag
		if err := setField(field, s.Value); err != nil {
			return c.configErr(s.Var, s.Value, want(s.Var, err))
		}
	}
	return nil
}

// setField parses value into one of Config's fields, as envconfig would.
func setField(field reflect.Value, value string) error {
	switch field.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(value)
		if err != nil {
			return err
		}
		field.SetInt(int64(d))
	case string:
		field.SetString(value)
	case []string:
		field.Set(reflect.Append(field, reflect.ValueOf(value)))
	default:
		return fmt.Errorf("no flag sets a %s", field.Type())
	}
	return nil
}

func last1(vs []string) string { return vs[len(vs)-1] }

// flagUsage is the flag part of --help.
func flagUsage() string {
	var b strings.Builder
	b.WriteString(`
Drop-in flags of prometheus-config-reloader and configmap-reload, written
--name=value or --name value. A flag wins over its variable (NAME and
POLLRELOAD_NAME): a container's args are written for it, while its
environment is partly inherited (envFrom, the image's ENV).
`)
	for _, from := range []string{fromPCR, fromCMR} {
		fmt.Fprintf(&b, "  %s:\n", from)
		for _, f := range dropInFlags {
			if f.from != from {
				continue
			}
			desc := f.v
			if f.help != "" {
				if desc != "" {
					desc += "; "
				}
				desc += f.help
			}
			fmt.Fprintf(&b, "    --%-32s %s\n", f.name, desc)
		}
	}
	return b.String()
}
