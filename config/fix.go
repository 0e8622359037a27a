package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/pollreload/pollreload/hasher"
	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file is what the configuration step adds to the libraries' errors:
// the fix, naming the variable as the user spelt it and the pod-spec field
// to change. The libraries return structured errors that say what they
// found (with the values of their Options); fixOf maps each type to its
// fix. The fix is added where an error is shown, never into its text: the
// log handler (LogHandler) adds a fix attribute to each record that
// carries an error, and check, hash, /readyz and the exit line print it
// after the error (Explain).

// Fix returns the fixes for the structured errors in err's tree (wrapped
// and joined alike), each once and in the order found, or "".
func (c Config) Fix(err error) string {
	var fixes []string
	walkErrors(err, func(e error) {
		if f := c.fixOf(e); f != "" && !slices.Contains(fixes, f) {
			fixes = append(fixes, f)
		}
	})
	return strings.Join(fixes, "; ")
}

// Explain returns err's text followed by its fix in parentheses, for the
// lines check and hash print.
func (c Config) Explain(err error) string {
	if err == nil {
		return ""
	}
	if f := c.Fix(err); f != "" {
		return err.Error() + " (" + f + ")"
	}
	return err.Error()
}

// walkErrors calls visit for err and every error it wraps, depth first:
// Unwrap() error and Unwrap() []error (errors.Join, fmt.Errorf with
// several %w) alike.
func walkErrors(err error, visit func(error)) {
	if err == nil {
		return
	}
	visit(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, visit)
		}
	}
}

// fixOf returns the fix for err itself (not what it wraps), "" when its
// type has none.
func (c Config) fixOf(err error) string {
	switch e := err.(type) {
	case *hasher.TooManyFilesError:
		return fmt.Sprintf("%s=%d; raise it or narrow %s/%s", c.Name("MAX_FILES"), e.Max, c.Name("INCLUDE"), c.Name("EXCLUDE"))
	case *hasher.FileTooLargeError:
		return fmt.Sprintf("%s=%d; raise it or leave the file out with %s", c.Name("MAX_FILE_SIZE"), e.Max, c.Name("EXCLUDE"))
	case *hasher.TooDeepError:
		return fmt.Sprintf("%s=%d; raise it or leave the directory out with %s", c.Name("MAX_DEPTH"), e.Max, c.Name("EXCLUDE"))
	case *hasher.TotalTooLargeError:
		return fmt.Sprintf("%s=%d; raise it or narrow %s/%s", c.Name("MAX_TOTAL_SIZE"), e.Max, c.Name("INCLUDE"), c.Name("EXCLUDE"))
	case *signaler.NoTargetError:
		name := c.Name("PROCESS_NAME") + "=" + strings.Join(e.Names, ",")
		switch {
		case e.PID1:
			return name + "; run the app under pollreload's wrapper mode (pollreload -- CMD) or in its own container with shareProcessNamespace: true in the pod spec"
		case len(e.Zombies) > 0:
			return name
		}
		return name + "; if the app runs in another container of the pod, set shareProcessNamespace: true in the pod spec"
	case *signaler.PIDFileError:
		return c.Name("PID_FILE") + "=" + e.Path
	case *signaler.NotCatchingError:
		until := ""
		if !e.Ignored {
			until = " until it installs one"
		}
		return fmt.Sprintf("the reload stays pending%s; %s=true sends anyway", until, c.Name("RELOAD_FORCE"))
	case *signaler.PermissionError:
		if e.TargetUID >= 0 {
			return fmt.Sprintf("set the sidecar's securityContext runAsUser to %d (the app's UID), or add the CAP_KILL capability", e.TargetUID)
		}
		return "set the sidecar's securityContext runAsUser to the app's UID, or add the CAP_KILL capability"
	case *signaler.SecretFileError:
		if v, ok := credentialVars[e.Field]; ok {
			return c.Name(v) + "=" + e.Path
		}
	case *verify.TimeoutError:
		v := "RELOAD_CHECK_TIMEOUT" // the check command's, and a profile's check
		if e.Name == c.Name("RELOAD_VERIFY_COMMAND") {
			v = "RELOAD_TIMEOUT"
		}
		return fmt.Sprintf("%s=%s; raise it if the command takes longer", c.Name(v), e.Timeout)
	case *verify.NoMetricError:
		metric := c.Name("RELOAD_VERIFY_METRIC")
		switch {
		case len(e.Several) > 0:
			return "set " + metric + " to the one of the application to reload"
		case len(e.Missing) > 0:
			return metric + "=" + c.ReloadVerifyMetric + "; set it to the application's reload metric"
		case len(e.Near) > 0:
			return "set " + metric + " to one of them"
		}
		return "set " + metric + " to the name of the application's reload metric, or unset " + c.Name("RELOAD_VERIFY_URL")
	case *verify.NotMovedError:
		return fmt.Sprintf("%s=%s; raise it if the application takes longer to reload (the metric is read at %s)", c.Name("RELOAD_TIMEOUT"), e.Timeout, c.Name("RELOAD_VERIFY_URL"))
	case *verify.ScrapeError:
		return "the metrics URL is " + c.Name("RELOAD_VERIFY_URL") + "; is the application up, and is it its metrics endpoint?"
	case *verify.ChildrenUnfitError:
		v := c.Name("RELOAD_VERIFY")
		switch e.Kind {
		case verify.Sessions:
			return fmt.Sprintf("use %s=exec, and %s='sshd -t -f CONFIG' so a bad config never reaches it", v, c.Name("RELOAD_CHECK_COMMAND"))
		case verify.Backends:
			return fmt.Sprintf("judge it by pg_conf_load_time() and pg_file_settings (the postgresql profile, %s=postgresql), not by %s=children", c.Name("RELOAD_APP"), v)
		}
		return fmt.Sprintf("%s=children is for master/worker servers such as nginx, haproxy -W or gunicorn; for a server that re-executes itself (sshd, uwsgi) use %[1]s=exec, otherwise leave %[1]s empty", v)
	case *verify.NoEvidenceError:
		if v := settingVars[e.Setting]; v != "" {
			return "set " + c.Name(v)
		}
	case *verify.UnverifiedError:
		if v := settingVars[e.Setting]; v != "" {
			return "set " + c.Name(v)
		}
	case *signaler.TimeoutError:
		return fmt.Sprintf("%s=%s; raise it if the application takes longer to answer", c.Name("RELOAD_TIMEOUT"), e.Timeout)
	}
	return ""
}

// settingVars maps the kinds of setting an application profile may need to
// their variables.
var settingVars = map[verify.Setting]string{
	verify.StatusSetting:       "RELOAD_APP_STATUS",
	verify.CheckCommandSetting: "RELOAD_CHECK_COMMAND",
	verify.DSNFileSetting:      "RELOAD_APP_DSN_FILE",
	verify.LogSetting:          "RELOAD_VERIFY_LOG",
	verify.MetricsURLSetting:   "RELOAD_VERIFY_URL",
}

// credentialVars maps the fields of signaler.ClientOptions that name a
// file to their variables.
var credentialVars = map[string]string{
	"BearerTokenFile":       "RELOAD_BEARER_TOKEN_FILE",
	"BasicAuthPasswordFile": "RELOAD_BASIC_AUTH_PASSWORD_FILE",
	"CAFile":                "RELOAD_CA_FILE",
	"CertFile":              "RELOAD_CERT_FILE",
	"KeyFile":               "RELOAD_KEY_FILE",
}

// LogHandler returns h behind a handler that adds a fix attribute (Fix)
// to each record whose err attribute holds an error with a fix. The
// program installs it; the libraries log "err" as they do and name no
// variable.
func (c Config) LogHandler(h slog.Handler) slog.Handler {
	return fixHandler{Handler: h, fix: c.Fix}
}

// fixHandler is LogHandler's handler.
type fixHandler struct {
	slog.Handler
	fix func(error) string
}

// Handle adds the fix, then passes the record on.
func (h fixHandler) Handle(ctx context.Context, r slog.Record) error {
	var fix string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			if err, ok := a.Value.Any().(error); ok {
				fix = h.fix(err)
			}
			return false
		}
		return true
	})
	if fix != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("fix", fix))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the fix handler in front of the new handler.
func (h fixHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return fixHandler{Handler: h.Handler.WithAttrs(attrs), fix: h.fix}
}

// WithGroup keeps the fix handler in front of the new handler.
func (h fixHandler) WithGroup(name string) slog.Handler {
	return fixHandler{Handler: h.Handler.WithGroup(name), fix: h.fix}
}

// Explained is err with Explain's text, still wrapping err; nil for nil,
// and err itself when it is explained already or has no fix.
func (c Config) Explained(err error) error {
	var done *explainedError
	if err == nil || errors.As(err, &done) || c.Fix(err) == "" {
		return err
	}
	return &explainedError{err: err, text: c.Explain(err)}
}

// explainedError is an error followed by its fix.
type explainedError struct {
	err  error
	text string
}

func (e *explainedError) Error() string { return e.text }
func (e *explainedError) Unwrap() error { return e.err }
