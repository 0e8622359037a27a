package verify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// This file holds the application profiles (RELOAD_APP): for each
// application users reload by signal, the signal it reloads on, the
// command that checks its configuration, and where its own verdict can be
// read, found from the target's command line (/proc/PID/cmdline) and
// configuration so that the user writes none of it.

// Profile is what pollreload knows about one application's reload contract.
type Profile struct {
	// Name is the canonical name, the value RELOAD_APP shows.
	Name string
	// Signal is the signal the application reloads on.
	Signal syscall.Signal
	// Refused, when not empty, says why a signal cannot reload the
	// application at all, and what to do instead.
	Refused string
	// Evidence says, for `check` and the start log, what the application's
	// verdict is read from.
	Evidence string
	// Setting is the kind of setting that gives the verdict when the
	// command line does not (NoSetting when the evidence needs none); the
	// caller names it.
	Setting Setting
	// executables are the names the application runs as.
	executables []string
}

// Setting is a kind of setting a profile may need to read the
// application's verdict.
type Setting int

const (
	// NoSetting: the command line says all the profile needs.
	NoSetting Setting = iota
	// StatusSetting is where the application's status is read: apache's
	// server-status URL, haproxy's master CLI socket, uwsgi's stats
	// address (SourceOptions.Status).
	StatusSetting
	// CheckCommandSetting is the check command run before the signal.
	CheckCommandSetting
	// DSNFileSetting is the file holding the database connection string
	// (SourceOptions.DSN).
	DSNFileSetting
	// LogSetting is the application's log file, read after the signal.
	LogSetting
	// MetricsURLSetting is the application's Prometheus metrics URL.
	MetricsURLSetting
)

var profiles = []Profile{
	{Name: "nginx", Signal: syscall.SIGHUP, executables: []string{"nginx"},
		Evidence: "the master's workers replaced (a refused config keeps the old ones)"},
	{Name: "apache", Signal: syscall.SIGUSR1, executables: []string{"apache2", "httpd", "apache"},
		Evidence: "mod_status's ParentServerConfigGeneration (server-status?auto) moved", Setting: StatusSetting},
	{Name: "sshd", Signal: syscall.SIGHUP, executables: []string{"sshd"},
		Evidence: "the check command (sshd -t) before the signal, the re-exec in place after", Setting: CheckCommandSetting},
	{Name: "gunicorn", Signal: syscall.SIGHUP, executables: []string{"gunicorn", "gunicorn3"},
		Evidence: "the arbiter's workers replaced"},
	{Name: "uwsgi", Signal: syscall.SIGHUP, executables: []string{"uwsgi", "uwsgi-core"},
		Evidence: "the stats server (--stats): new workers, each with its app loaded", Setting: StatusSetting},
	{Name: "postgresql", Signal: syscall.SIGHUP, executables: []string{"postgres", "postmaster", "postgresql"},
		Evidence: "pg_conf_load_time() moved and no pg_file_settings row with an error", Setting: DSNFileSetting},
	{Name: "pgbouncer", Signal: syscall.SIGHUP, executables: []string{"pgbouncer"},
		Evidence: "its log file's lines after the signal", Setting: LogSetting},
	{Name: "haproxy", Signal: syscall.SIGUSR2, executables: []string{"haproxy"},
		Evidence: "the master CLI (-S socket): show proc's reload count moved and its failed count did not", Setting: StatusSetting},
	{Name: "prometheus", Signal: syscall.SIGHUP, executables: []string{"prometheus"},
		Evidence: "/metrics at --web.listen-address: prometheus_config_last_reload_successful and its timestamp", Setting: MetricsURLSetting},
	{Name: "mariadb", executables: []string{"mariadbd", "mysqld", "mariadb", "mysql"},
		Refused: "mariadb/mysqld does not re-read its configuration files on SIGHUP (it flushes logs and caches), so no signal can reload it: apply settings with SET GLOBAL through a client, or restart the server on a change (a Deployment rollout, or pollreload's wrapper mode restarting it is not what pollreload does)"},
}

// aliases maps other names users give to the canonical ones.
var aliases = map[string]string{
	"apache2": "apache", "httpd": "apache", "postgres": "postgresql", "pg": "postgresql", "postmaster": "postgresql",
	"mysqld": "mariadb", "mysql": "mariadb", "mariadbd": "mariadb", "openssh": "sshd", "ssh": "sshd",
	"openssh-server": "sshd", "uwsgi-core": "uwsgi", "gunicorn3": "gunicorn",
}

// Profiles lists the known applications, for --help and errors.
func Profiles() []string {
	out := make([]string, len(profiles))
	for i, p := range profiles {
		out[i] = p.Name
	}
	return out
}

// LookupProfile returns the profile RELOAD_APP names, by its name or an
// alias, case-insensitively.
func LookupProfile(name string) (Profile, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if a, ok := aliases[n]; ok {
		n = a
	}
	for _, p := range profiles {
		if p.Name == n {
			return p, true
		}
	}
	return Profile{}, false
}

// DetectProfile returns the profile of a process whose executable, or
// whose command line (/proc/PID/cmdline, as AppArgs reads it: the script an
// interpreter runs, the command line a title quotes), has one of the
// applications' names.
func DetectProfile(exe string, args []string) (Profile, bool) {
	names := []string{filepath.Base(exe)}
	if len(args) > 0 {
		names = append(names, filepath.Base(args[0]))
		if own, _ := appArgs(args); len(own) > 0 {
			names = append(names, filepath.Base(own[0]))
		}
	}
	for _, name := range names {
		name = strings.TrimSuffix(strings.Fields(name + " ")[0], ":") // "postgres: checkpointer"
		for _, p := range profiles {
			for _, e := range p.executables {
				if name == e {
					return p, true
				}
			}
		}
	}
	return Profile{}, false
}

// interpreter matches the executables that run an application's script:
// gunicorn is "/usr/bin/python3 /usr/bin/gunicorn ..." in /proc/PID/cmdline.
var interpreter = regexp.MustCompile(`^python[0-9.]*$`)

// AppArgs returns the command line the application was started with, from
// the one its process shows (/proc/PID/cmdline). They differ in two cases:
//   - a script run by its interpreter ("/usr/bin/python3 /usr/bin/gunicorn
//     -c gunicorn.conf.py app:app"): the script and its arguments;
//   - a title the application wrote over its arguments, as one string
//     ("nginx: master process nginx -c /etc/nginx/nginx.conf", "sshd:
//     /usr/sbin/sshd -D -f /etc/ssh/sshd_config [listener] 0 of 10-100
//     startups"): the words of the command line it quotes. An argument
//     that held spaces cannot be told from two words then.
func AppArgs(args []string) []string {
	out, _ := appArgs(args)
	return out
}

// appArgs is AppArgs, and whether args was a title.
func appArgs(args []string) ([]string, bool) {
	if len(args) == 1 && strings.Contains(args[0], " ") {
		if _, err := os.Stat(args[0]); err != nil { // not a path with a space
			s := args[0]
			if name, rest, ok := strings.Cut(s, ": "); ok && !strings.Contains(name, " ") {
				s = rest // "nginx: ", "sshd: "
			}
			s = strings.TrimPrefix(s, "master process ") // nginx
			if i := strings.Index(s, " ["); i >= 0 {
				s = s[:i] // sshd's " [listener] 0 of 10-100 startups"
			}
			return strings.Fields(s), true
		}
	}
	if len(args) > 1 && interpreter.MatchString(filepath.Base(args[0])) {
		for i := 1; i < len(args); i++ {
			if !strings.HasPrefix(args[i], "-") { // the script, after the interpreter's options
				return args[i:], false
			}
			if args[i] == "-m" || args[i] == "-c" { // a module or a program text: no script
				break
			}
		}
	}
	return args, false
}

// ownArgs is AppArgs for this profile: from nginx's title, -g's value is
// every word up to the next flag ("-g daemon off;").
func (p Profile) ownArgs(args []string) []string {
	out, titled := appArgs(args)
	if !titled || p.Name != "nginx" {
		return out
	}
	var grouped []string
	for i := 0; i < len(out); i++ {
		grouped = append(grouped, out[i])
		if out[i] != "-g" {
			continue
		}
		j := i + 1
		for j < len(out) && !strings.HasPrefix(out[j], "-") {
			j++
		}
		if j > i+1 {
			grouped = append(grouped, strings.Join(out[i+1:j], " "))
		}
		i = j - 1
	}
	return grouped
}

// ReadCmdline returns /proc/PID/cmdline as arguments.
func ReadCmdline(procDir string, pid int) ([]string, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, err
	}
	b = []byte(strings.TrimRight(string(b), "\x00"))
	if len(b) == 0 {
		return nil, fmt.Errorf("pid %d has an empty command line", pid)
	}
	return strings.Split(string(b), "\x00"), nil
}

// flagValue returns the value of a flag in args: "-S x", "-Sx", "--stats x",
// "--stats=x"; ok is false when absent.
func flagValue(args []string, names ...string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		for _, n := range names {
			switch {
			case a == n && i+1 < len(args):
				return args[i+1], true
			case strings.HasPrefix(n, "--") && strings.HasPrefix(a, n+"="):
				return a[len(n)+1:], true
			case !strings.HasPrefix(n, "--") && len(n) == 2 && strings.HasPrefix(a, n) && len(a) > 2 && !strings.HasPrefix(a, "--"):
				return a[2:], true
			}
		}
	}
	return "", false
}

// CheckCommand returns the command that checks the configuration the
// process with args runs with, or nil when the profile has none or its
// binary is not beside pollreload. lookPath finds a binary (exec.LookPath).
func (p Profile) CheckCommand(args []string, lookPath func(string) (string, error)) []string {
	args = p.ownArgs(args)
	if len(args) == 0 {
		return nil
	}
	bin := args[0]
	if !filepath.IsAbs(bin) {
		var err error
		if bin, err = lookPath(filepath.Base(bin)); err != nil {
			return nil
		}
	} else if _, err := os.Stat(bin); err != nil {
		return nil
	}
	rest := args[1:]
	keep := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if v, ok := flagValue(rest, n); ok {
				out = append(out, n, v)
			}
		}
		return out
	}
	switch p.Name {
	case "nginx":
		return append([]string{bin, "-t", "-q"}, keep("-c", "-p", "-e", "-g")...)
	case "apache":
		return append([]string{bin, "-t"}, keep("-d", "-f")...)
	case "sshd":
		return append([]string{bin, "-t"}, keep("-f")...)
	case "gunicorn":
		return append([]string{bin, "--check-config"}, rest...)
	case "haproxy":
		files := []string{bin, "-c", "-q"}
		for i := 0; i < len(rest); i++ {
			if rest[i] == "-f" && i+1 < len(rest) {
				files = append(files, "-f", rest[i+1])
			}
		}
		if len(files) == 3 {
			return nil
		}
		return files
	}
	return nil
}

// SourceOptions holds the user's settings a profile's verification may
// use instead of what the command line says.
type SourceOptions struct {
	// Status is RELOAD_APP_STATUS: apache's status URL, haproxy's master
	// CLI socket or uwsgi's stats address.
	Status string
	// DSN is the PostgreSQL connection string read from RELOAD_APP_DSN_FILE.
	DSN string
	// Timeout is RELOAD_TIMEOUT.
	Timeout time.Duration
	// Signal is the signal sent, for the children verifier's errors.
	Signal syscall.Signal
}

// ErrNoEvidence is wrapped by Source's error when the command line and
// configuration do not say where the application's verdict can be read.
var ErrNoEvidence = errors.New("no evidence of the application's verdict")

// Source returns the verifier that reads the application's verdict for a
// process running args, and a description of it. Without one (the command
// line does not name it and the options do not either), it returns an
// error wrapping ErrNoEvidence that names the setting.
func (p Profile) Source(args []string, opts SourceOptions) (Verifier, string, error) {
	rest := p.ownArgs(args)
	if len(rest) > 0 {
		rest = rest[1:]
	}
	none := func(why string) (Verifier, string, error) {
		return nil, "", &NoEvidenceError{Why: why, Setting: p.Setting}
	}
	switch p.Name {
	case "nginx", "gunicorn":
		v := NewChildrenVerifier(ChildrenOptions{Timeout: opts.Timeout, Signal: opts.Signal})
		return v, "workers replaced", nil
	case "sshd":
		v := NewExecVerifier(ExecOptions{Timeout: opts.Timeout, Signal: opts.Signal})
		return v, "re-executed in place and still running; a bad config is stopped by the check (sshd -t)", nil
	case "haproxy":
		sock := opts.Status
		if sock == "" {
			s, ok := flagValue(rest, "-S")
			if !ok {
				return none("haproxy runs without a master CLI (-W -S /path/to/master.sock)")
			}
			sock, _, _ = strings.Cut(s, ",") // "-S /run/haproxy-master.sock,mode,600"
			sock = strings.TrimPrefix(sock, "unix@")
			if strings.Contains(sock, ":") && !strings.HasPrefix(sock, "/") {
				return none("its master CLI listens on TCP (" + sock + "), not on a unix socket")
			}
		}
		v, err := NewHAProxyMaster(HAProxyOptions{Socket: sock, Timeout: opts.Timeout})
		if err != nil {
			return nil, "", err
		}
		return v, v.String(), nil
	case "uwsgi":
		addr := opts.Status
		if addr == "" {
			addr = uwsgiStatsAddr(rest)
			if addr == "" {
				return none("uwsgi runs without a stats server (--stats 127.0.0.1:PORT, or stats = in its ini)")
			}
		}
		v, err := NewUWSGIStats(UWSGIOptions{Addr: addr, Timeout: opts.Timeout})
		if err != nil {
			return nil, "", err
		}
		return v, v.String(), nil
	case "apache":
		u := opts.Status
		if u == "" {
			u = apacheStatusURL(rest)
			if u == "" {
				return none("its configuration has no <Location> with SetHandler server-status (mod_status) that pollreload could find")
			}
		}
		v, err := NewApacheStatus(ApacheOptions{URL: u, Timeout: opts.Timeout})
		if err != nil {
			return nil, "", err
		}
		return v, v.String(), nil
	case "postgresql":
		dsn := opts.DSN
		if dsn == "" {
			dsn = postgresDSN(rest)
		}
		v, err := NewPostgresSQL(PostgresOptions{DSN: dsn, Timeout: opts.Timeout})
		if err != nil {
			return nil, "", err
		}
		return v, v.String(), nil
	case "prometheus":
		addr, ok := flagValue(rest, "--web.listen-address")
		if !ok {
			addr = ":9090"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return none("--web.listen-address " + addr + " is not host:port")
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		v, err := NewMetricVerifier(MetricOptions{URL: "http://" + net.JoinHostPort(host, port) + "/metrics", Timeout: opts.Timeout})
		if err != nil {
			return nil, "", err
		}
		return v, "prometheus_config_last_reload_* at " + v.URL(), nil
	}
	return none("pollreload reads no status of " + p.Name + " by itself")
}

// uwsgiStatsAddr finds --stats on the command line, or stats = in the ini
// file it was started with (--ini FILE, or FILE.ini alone).
func uwsgiStatsAddr(args []string) string {
	if v, ok := flagValue(args, "--stats"); ok {
		return v
	}
	ini, ok := flagValue(args, "--ini")
	if !ok {
		for _, a := range args {
			if strings.HasSuffix(a, ".ini") {
				ini, ok = a, true
			}
		}
	}
	if !ok {
		return ""
	}
	f, err := os.Open(ini)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	section := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && section == "uwsgi" && strings.TrimSpace(k) == "stats" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// apacheStatusURL reads the configuration apache runs with (-f, relative
// to -d, and the files it includes) for a Location handled by
// server-status, and the first Listen address.
func apacheStatusURL(args []string) string {
	root, _ := flagValue(args, "-d")
	if root == "" {
		root = "/etc/apache2"
	}
	conf, _ := flagValue(args, "-f")
	if conf == "" {
		conf = "apache2.conf"
	}
	if !filepath.IsAbs(conf) {
		conf = filepath.Join(root, conf)
	}
	var location, listen string
	budget := 64 // files
	var read func(path string, depth int)
	read = func(path string, depth int) {
		if depth > 4 || budget == 0 {
			return
		}
		budget--
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
		var block string
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
				continue
			}
			key := strings.ToLower(fs[0])
			arg := ""
			if len(fs) > 1 {
				arg = strings.Trim(strings.TrimSuffix(fs[1], ">"), `"'`)
			}
			switch {
			case key == "<location":
				block = arg
			case key == "</location>":
				block = ""
			case key == "sethandler" && strings.EqualFold(arg, "server-status") && block != "" && location == "":
				location = block
			case key == "listen" && listen == "":
				listen = arg
			case key == "include" || key == "includeoptional":
				pat := arg
				if !filepath.IsAbs(pat) {
					pat = filepath.Join(root, pat)
				}
				matches, _ := filepath.Glob(pat)
				for _, m := range matches {
					read(m, depth+1)
				}
			}
		}
	}
	read(conf, 0)
	if location == "" || listen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "", listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "*" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + location + "?auto"
}

// postgresDSN builds a connection through the unix socket the postmaster
// was started with (-k, or Debian's /var/run/postgresql) and its port
// (-p), as the postgres user.
func postgresDSN(args []string) string {
	sock, ok := flagValue(args, "-k")
	if !ok {
		sock = "/var/run/postgresql"
	}
	sock, _, _ = strings.Cut(sock, ",")
	port, ok := flagValue(args, "-p")
	if !ok {
		port = "5432"
	}
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", sock, port)
}

// NoEvidenceError says why a profile can read no verdict for a command
// line, and which kind of setting would give it one. It wraps
// ErrNoEvidence.
type NoEvidenceError struct {
	Why     string
	Setting Setting
}

func (e *NoEvidenceError) Error() string { return fmt.Sprintf("%v: %s", ErrNoEvidence, e.Why) }

// Unwrap makes errors.Is(err, ErrNoEvidence) hold.
func (e *NoEvidenceError) Unwrap() error { return ErrNoEvidence }

// UnverifiedError is the verdict when the application got the reload and
// still runs, but pollreload could read no evidence of whether it took it.
type UnverifiedError struct {
	App    string
	Reason string
	// Setting is the kind of setting that would verify it, NoSetting when
	// none would.
	Setting Setting
}

// Error says what is missing; the caller names the Setting that would
// verify it.
func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("%s: the reload was delivered and %s still runs, but whether it took the configuration is unverified: %s", e.App, e.App, e.Reason)
}

// Is makes errors.Is(err, signaler.ErrUnverified) hold.
func (e *UnverifiedError) Is(target error) bool { return target == signaler.ErrUnverified }
