package signaler

import (
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// This file names targets for the `target` metric label: a value that is
// fixed by the configuration (never a PID, which changes on every restart),
// short, and free of secrets.

// maxLabelLen bounds a target label value.
const maxLabelLen = 128

// TargetLabel returns the metric label value for a target given as a
// RELOAD_URL entry, a PROCESS_NAME entry or a PID_FILE path: for a URL its
// host and path, without userinfo, query or fragment; otherwise the name
// itself. The result is valid UTF-8 of at most 128 bytes.
func TargetLabel(target string) string {
	s := strings.TrimSpace(target)
	if u, err := url.Parse(s); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		p := u.EscapedPath()
		if p != "" {
			p = path.Clean("/" + p)
		}
		s = u.Host + strings.TrimSuffix(p, "/")
		if p == "/" {
			s = u.Host + "/"
		}
	} else if strings.Contains(s, "://") {
		return "(invalid URL)" // it may hold credentials in a form url.Parse refuses
	}
	s = strings.ToValidUTF8(s, "?")
	if len(s) > maxLabelLen {
		cut := maxLabelLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// Label returns the target label of the process reloader: its names joined
// with commas, or "pidfile:" and the PID file's base name.
func (p *Process) Label() string {
	if p.pidFile != "" {
		return TargetLabel("pidfile:" + filepath.Base(p.pidFile))
	}
	return TargetLabel(strings.Join(p.names, ","))
}

// Label returns the target label of the HTTP reloader: the URL's host and
// path.
func (h *HTTP) Label() string { return TargetLabel(h.url) }

// Label returns the target label of the child: its command's base name.
func (c *Child) Label() string { return TargetLabel(c.name) }
