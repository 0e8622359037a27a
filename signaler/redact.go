package signaler

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// This file keeps secrets in URLs out of everything pollreload shows: logs,
// errors, `pollreload check` and metric labels all go through RedactURL.

// redactMask replaces each secret part of a URL.
const redactMask = "xxxxx"

// RedactURL returns raw for display with every part that may hold a secret
// masked: the whole userinfo, a lone user name included (tokens are often
// passed as https://TOKEN@host/, which url.URL.Redacted leaves visible), the
// value of every query parameter (and a parameter that is only a key, as in
// ?TOKEN), and the fragment. Scheme, host, port, path and query keys stay,
// so the URL can still be recognised. A URL that does not parse is shown as
// "(unparsable URL)": url.Parse's own error would quote it whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactParsed(u)
}

func redactParsed(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, hasPassword := c.User.Password(); hasPassword {
			c.User = url.UserPassword(redactMask, redactMask)
		} else {
			c.User = url.User(redactMask)
		}
	}
	if c.Opaque != "" {
		c.Opaque = redactMask
	}
	if c.RawQuery != "" || c.ForceQuery {
		parts := strings.Split(c.RawQuery, "&")
		for i, p := range parts {
			if key, _, ok := strings.Cut(p, "="); ok {
				parts[i] = key + "=" + redactMask
			} else if p != "" {
				parts[i] = redactMask
			}
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	if c.Fragment != "" || c.RawFragment != "" {
		c.Fragment, c.RawFragment = redactMask, ""
	}
	return c.String()
}

// minSecretLen is the shortest URL part scrubbed from free text: shorter
// ones (?v=1) are no secret and would mask unrelated digits in messages.
const minSecretLen = 4

// urlScrubber masks a URL and its secret parts wherever they appear in a
// text, for errors that quote the URL in their own words (net/http's
// *url.Error, a redirect's Location).
type urlScrubber struct{ r *strings.Replacer }

func newURLScrubber(u *url.URL) urlScrubber {
	redacted := redactParsed(u)
	pairs := map[string]string{u.String(): redacted}
	secret := func(s string) {
		if len(s) >= minSecretLen {
			pairs[s] = redactMask
			pairs[url.QueryEscape(s)] = redactMask
			pairs[url.PathEscape(s)] = redactMask
		}
	}
	if u.User != nil {
		secret(u.User.Username())
		pw, _ := u.User.Password()
		secret(pw)
		secret(u.User.String())
	}
	secret(u.Opaque)
	secret(u.RawQuery)
	for _, p := range strings.Split(u.RawQuery, "&") {
		key, value, ok := strings.Cut(p, "=")
		if !ok {
			value = key
		}
		secret(value)
		if v, err := url.QueryUnescape(value); err == nil {
			secret(v)
		}
	}
	secret(u.Fragment)
	secret(u.RawFragment)
	// Longest first, so the whole URL is replaced before its parts.
	olds := make([]string, 0, len(pairs))
	for o := range pairs {
		if o != "" {
			olds = append(olds, o)
		}
	}
	slices.SortFunc(olds, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	args := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		args = append(args, o, pairs[o])
	}
	return urlScrubber{r: strings.NewReplacer(args...)}
}

// scrub returns err with every secret of the URL masked in its text. The
// cause stays reachable for errors.Is (a timeout, a cancelled context).
func (s urlScrubber) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := s.r.Replace(msg); clean != msg {
		return &scrubbedError{msg: clean, err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Redactor masks one endpoint's secrets in what the endpoint answers: the
// bearer token, the basic auth password (and the Authorization header as
// sent), every RELOAD_HEADERS value, and the URL's userinfo and query
// values; URLs in the text lose their credentials and query values too.
// RELOAD_URL's refusals and RELOAD_VERIFY_URL's error pages both go
// through it: one redaction for every excerpt. Files are re-read on each
// use, so a rotated token is masked as well.
type Redactor struct {
	auth ClientOptions
	url  []string
}

// NewRedactor returns the Redactor of an endpoint at rawURL called with
// auth.
func NewRedactor(rawURL string, auth ClientOptions) Redactor {
	r := Redactor{auth: auth}
	if u, err := url.Parse(rawURL); err == nil {
		r.url = urlSecrets(u)
	}
	return r
}

// Secrets lists what Excerpt masks.
func (r Redactor) Secrets() []string { return append(r.auth.secrets(), r.url...) }

// Excerpt makes an answer safe and short for logs and errors (see Excerpt).
func (r Redactor) Excerpt(body []byte) string { return excerpt(body, r.Secrets()) }
