package config

import "testing"

// TestConfigValidateSources: RELOAD_VERIFY=exec, RELOAD_VERIFY_COMMAND and
// RELOAD_VERIFY_LOG*, each bad value with its exact message.
func TestConfigValidateSources(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" means valid; otherwise the exact error
	}{
		{"exec", func(c *Config) { c.ReloadVerify = "exec" }, ""},
		{"exec without a process", func(c *Config) { c.ProcessName = nil; c.ReloadURL = "http://h/r"; c.ReloadVerify = "exec" }, `invalid RELOAD_VERIFY="exec": exec watches a signalled process: set PROCESS_NAME or PID_FILE, or use pollreload -- CMD`},
		{"command", func(c *Config) { c.ReloadVerifyCommand = "/usr/local/bin/app-status --quiet" }, ""},
		{"command with shell syntax", func(c *Config) { c.ReloadVerifyCommand = "app-status | grep ok" },
			`invalid RELOAD_VERIFY_COMMAND="app-status | grep ok": it holds a shell operator (; & | < >), which runs only in a shell: set RELOAD_VERIFY_SHELL=true, or quote it`},
		{"command in a shell", func(c *Config) { c.ReloadVerifyCommand = "app-status | grep ok"; c.ReloadVerifyShell = true }, ""},
		{"shell without a command", func(c *Config) { c.ReloadVerifyShell = true }, "RELOAD_VERIFY_SHELL is set but RELOAD_VERIFY_COMMAND is not: set the command to run, or unset it"},
		{"empty command given", func(c *Config) { c.given = map[string]string{"RELOAD_VERIFY_COMMAND": "RELOAD_VERIFY_COMMAND"} },
			`RELOAD_VERIFY_COMMAND is set but empty: want a command that exits 0 when the application took its configuration and 1 when it refused it, or unset it`},
		{"log", func(c *Config) {
			c.VerifyLog, c.VerifyLogSuccess, c.VerifyLogFailure = "/var/log/pgbouncer/stderr.log", "got SIGHUP, re-reading config", "config file loading failed"
		}, ""},
		{"log without a failure pattern", func(c *Config) { c.VerifyLog, c.VerifyLogSuccess = "/var/log/app.log", "reloaded" },
			`RELOAD_VERIFY_LOG_FAILURE is not set: want a regular expression (Go syntax) of the log line, such as 'config file loading failed'; RELOAD_VERIFY_LOG needs both patterns`},
		{"log with a bad pattern", func(c *Config) {
			c.VerifyLog, c.VerifyLogSuccess, c.VerifyLogFailure = "/var/log/app.log", "reloaded(", "failed"
		},
			"invalid RELOAD_VERIFY_LOG_SUCCESS=\"reloaded(\": want a regular expression in Go syntax (error parsing regexp: missing closing ): `reloaded(`)"},
		{"pattern without a log", func(c *Config) {
			c.VerifyLogFailure = "failed"
			c.given = map[string]string{"RELOAD_VERIFY_LOG_FAILURE": "RELOAD_VERIFY_LOG_FAILURE"}
		}, "RELOAD_VERIFY_LOG_FAILURE is set but RELOAD_VERIFY_LOG is not: name the application's log file, or unset it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate(false)
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
