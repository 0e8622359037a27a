package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// This file validates the settings of reload targets, verification and
// authenticated HTTP: RELOAD_URL (a list), RELOAD_VERIFY*, RELOAD_CHECK_*,
// RELOAD_*_FILE, RELOAD_HEADERS.

// VerifyChildren is the one accepted value of RELOAD_VERIFY.
const VerifyChildren = "children"

// metricName is the syntax of a Prometheus metric name.
var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// validateVerify checks the target, verification and HTTP client settings
// without touching the system.
func (c Config) validateVerify(wrapper bool) error {
	for _, raw := range c.ReloadURLs() {
		if !absoluteHTTP(raw) {
			return c.configErr("RELOAD_URL", signaler.RedactURL(raw), "want an absolute http:// or https:// URL (or several, comma-separated)")
		}
	}
	if strings.Contains(c.ReloadURL, ",") && len(c.ReloadURLs()) == 0 {
		return c.configErr("RELOAD_URL", c.ReloadURL, "want an absolute http:// or https:// URL (or several, comma-separated)")
	}
	if c.BearerTokenFile != "" || c.BasicAuthUsername != "" {
		for v, raws := range map[string][]string{"RELOAD_URL": c.ReloadURLs(), "RELOAD_VERIFY_URL": {c.ReloadVerifyURL}} {
			for _, raw := range raws {
				if u, err := url.Parse(raw); err == nil && u.User != nil {
					// Go would send the URL's userinfo and drop the others.
					return fmt.Errorf("%s carries credentials (%s) and RELOAD_BEARER_TOKEN_FILE or RELOAD_BASIC_AUTH_USERNAME is set too: keep one of them", v, signaler.RedactURL(raw))
				}
			}
		}
	}
	if c.ReloadVerifyURL != "" && !absoluteHTTP(c.ReloadVerifyURL) {
		return c.configErr("RELOAD_VERIFY_URL", signaler.RedactURL(c.ReloadVerifyURL), "want the absolute http:// or https:// URL of the application's metrics, such as http://127.0.0.1:9090/metrics")
	}
	if m := c.ReloadVerifyMetric; m != "" {
		switch {
		case c.ReloadVerifyURL == "":
			return c.configErr("RELOAD_VERIFY_METRIC", m, "needs RELOAD_VERIFY_URL, the metrics endpoint to read it from")
		case !metricName.MatchString(m) || !strings.HasSuffix(m, "_last_reload_successful") && !strings.HasSuffix(m, "_last_reload_success_timestamp_seconds"):
			return c.configErr("RELOAD_VERIFY_METRIC", m, "want the name of a gauge ending in _last_reload_successful or _last_reload_success_timestamp_seconds, such as prometheus_config_last_reload_successful")
		}
	}
	if c.App != "" {
		if _, ok := verify.LookupProfile(c.App); !ok {
			return c.configErr("RELOAD_APP", c.App, "want one of "+strings.Join(verify.Profiles(), ", ")+" (or apache2, httpd, postgres, mysqld)")
		}
	}
	if c.AppStatus != "" && c.App == "" && len(c.ProcessName) == 0 && c.PIDFile == "" && !wrapper {
		return c.configErr("RELOAD_APP_STATUS", signaler.RedactURL(c.AppStatus), "is for a process target's application: set PROCESS_NAME or PID_FILE (and RELOAD_APP)")
	}
	switch strings.ToLower(strings.TrimSpace(c.ReloadVerify)) {
	case "":
	case VerifyChildren, VerifyExec:
		if !wrapper && len(c.ProcessName) == 0 && c.PIDFile == "" {
			return c.configErr("RELOAD_VERIFY", c.ReloadVerify, c.ReloadVerify+" watches a signalled process: set PROCESS_NAME or PID_FILE, or use pollreload -- CMD")
		}
	default:
		return c.configErr("RELOAD_VERIFY", c.ReloadVerify, "want children (a master/worker server replaces its workers), exec (a server re-executes itself in place, as sshd does), or leave it empty (the signalled process must only stay alive)")
	}
	if err := c.validateCheck(); err != nil {
		return err
	}
	if c.ReloadURL == "" && c.ReloadVerifyURL == "" {
		for v, set := range map[string]bool{
			"RELOAD_BEARER_TOKEN_FILE": c.BearerTokenFile != "", "RELOAD_BASIC_AUTH_USERNAME": c.BasicAuthUsername != "",
			"RELOAD_BASIC_AUTH_PASSWORD_FILE": c.BasicAuthPasswordFile != "", "RELOAD_CA_FILE": c.CAFile != "",
			"RELOAD_CERT_FILE": c.CertFile != "", "RELOAD_KEY_FILE": c.KeyFile != "", "RELOAD_HEADERS": c.ReloadHeaders != "",
		} {
			if set {
				return fmt.Errorf("%s is set but there is no HTTP request to use it for: set RELOAD_URL or RELOAD_VERIFY_URL, or unset it", v)
			}
		}
	}
	if _, err := signaler.ParseHeaders(c.ReloadHeaders); err != nil {
		var he *signaler.HeaderError
		if errors.As(err, &he) && he.Reserved {
			return fmt.Errorf("invalid %s: %v; use %s or %s for credentials", c.Name("RELOAD_HEADERS"), err, c.Name("RELOAD_BEARER_TOKEN_FILE"), "RELOAD_BASIC_AUTH_*")
		}
		return fmt.Errorf("invalid %s: %v", c.Name("RELOAD_HEADERS"), err)
	}
	return c.validateAuth()
}

// validateAuth checks the combinations of the HTTP client's credential
// settings, which signaler.ClientOptions.Validate checks again in its own
// words.
func (c Config) validateAuth() error {
	token, user, password := c.BearerTokenFile != "", c.BasicAuthUsername != "", c.BasicAuthPasswordFile != ""
	switch {
	case token && (user || password):
		return fmt.Errorf("set %s or %s, not both", c.Name("RELOAD_BEARER_TOKEN_FILE"), c.Name("RELOAD_BASIC_AUTH_USERNAME"))
	case user && !password:
		return fmt.Errorf("%s is set but %s is not: want both", c.Name("RELOAD_BASIC_AUTH_USERNAME"), c.Name("RELOAD_BASIC_AUTH_PASSWORD_FILE"))
	case !user && password:
		return fmt.Errorf("%s is set but %s is not: want both", c.Name("RELOAD_BASIC_AUTH_PASSWORD_FILE"), c.Name("RELOAD_BASIC_AUTH_USERNAME"))
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("%s and %s go together: set both for a client certificate, or neither", c.Name("RELOAD_CERT_FILE"), c.Name("RELOAD_KEY_FILE"))
	}
	return nil
}

// checkCredentialFiles makes sure every credential file can be read now
// (it is read again on every request).
func (c Config) checkCredentialFiles() error {
	for _, f := range []struct{ v, path string }{
		{"RELOAD_BEARER_TOKEN_FILE", c.BearerTokenFile},
		{"RELOAD_BASIC_AUTH_PASSWORD_FILE", c.BasicAuthPasswordFile},
		{"RELOAD_CA_FILE", c.CAFile},
		{"RELOAD_CERT_FILE", c.CertFile},
		{"RELOAD_KEY_FILE", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := signaler.CheckSecretFile(f.path); err != nil {
			return c.configErr(f.v, f.path, err.Error())
		}
	}
	return nil
}

// maxCheckTimeout bounds RELOAD_CHECK_TIMEOUT.
const maxCheckTimeout = time.Hour

// validateCheck checks RELOAD_CHECK_*: the command must split into words
// (or a shell must exist to run it), and the timeout be sane.
func (c Config) validateCheck() error {
	_, timeoutGiven := c.given["RELOAD_CHECK_TIMEOUT"]
	if (timeoutGiven || c.ReloadCheckCommand != "") && (c.ReloadCheckTimeout <= 0 || c.ReloadCheckTimeout > maxCheckTimeout) {
		return c.configErr("RELOAD_CHECK_TIMEOUT", c.ReloadCheckTimeout.String(), "want a Go duration above 0 and at most 1h, such as 30s")
	}
	if c.ReloadCheckCommand == "" {
		if _, given := c.given["RELOAD_CHECK_COMMAND"]; given {
			return c.configErr("RELOAD_CHECK_COMMAND", "", "want a command such as nginx -t -c /etc/nginx/nginx.conf, or unset it")
		}
		if c.ReloadCheckShell {
			return fmt.Errorf("%s is set but %s is not: set the command to run, or unset it", c.Name("RELOAD_CHECK_SHELL"), c.Name("RELOAD_CHECK_COMMAND"))
		}
		return nil
	}
	if _, err := c.CheckCommand(nil); err != nil {
		return c.configErr("RELOAD_CHECK_COMMAND", signaler.Excerpt([]byte(c.ReloadCheckCommand), nil), c.commandProblem(err, "RELOAD_CHECK_SHELL"))
	}
	return nil
}

// commandProblem is what a command variable accepts, from NewCommand's
// error: its facts, then how to ask for a shell (shellVar) or do without.
func (c Config) commandProblem(err error, shellVar string) string {
	var se *verify.ShellSyntaxError
	switch {
	case errors.As(err, &se) && se.Expands:
		return fmt.Sprintf("%v: set %s=true, or write the value out", err, c.Name(shellVar))
	case errors.As(err, &se):
		return fmt.Sprintf("%v: set %s=true, or quote it", err, c.Name(shellVar))
	case errors.Is(err, verify.ErrNoShell):
		return fmt.Sprintf("%v: unset %s and write the command without shell syntax", err, c.Name(shellVar))
	}
	return err.Error()
}

// checkCommand returns RELOAD_CHECK_COMMAND's Command, nil when it is not
// set. env is the command's environment (see checkEnv).
func (c Config) CheckCommand(env []string) (*verify.Command, error) {
	if c.ReloadCheckCommand == "" {
		return nil, nil
	}
	return verify.NewCommand(verify.CommandOptions{
		Line: c.ReloadCheckCommand, Shell: c.ReloadCheckShell, Timeout: c.ReloadCheckTimeout,
		Env: env, Name: c.Name("RELOAD_CHECK_COMMAND"),
	})
}

// checkEnv is the environment of the check command: pollreload's own,
// without any variable pollreload reads (NAME and POLLRELOAD_NAME: they
// may hold secrets, such as RELOAD_HEADERS and the URLs' credentials, and
// the application's own tools have no use for them) and without any other
// POLLRELOAD_ variable.
func checkEnv(environ []string) []string {
	ours := map[string]bool{}
	for _, v := range Variables() {
		ours[v] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if ours[name] || strings.HasPrefix(name, envPrefix+"_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// reloadURLs returns the entries of RELOAD_URL.
func (c Config) ReloadURLs() []string {
	return cleanList(strings.Split(c.ReloadURL, ","))
}

// clientOptions returns the HTTP client settings; RELOAD_HEADERS must have
// passed Validate.
func (c Config) ClientOptions() signaler.ClientOptions {
	h, _ := signaler.ParseHeaders(c.ReloadHeaders)
	return signaler.ClientOptions{
		BearerTokenFile:       c.BearerTokenFile,
		BasicAuthUsername:     c.BasicAuthUsername,
		BasicAuthPasswordFile: c.BasicAuthPasswordFile,
		CAFile:                c.CAFile,
		CertFile:              c.CertFile,
		KeyFile:               c.KeyFile,
		Headers:               h,
	}
}

func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
