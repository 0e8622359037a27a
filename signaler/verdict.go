package signaler

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file holds the application's verdicts on a delivered reload: refused
// (RejectedError) or dead (TargetDiedError), and the transient HTTP answers
// that are neither.

// answerLen bounds the application's answer kept in a RejectedError: the
// start of an error page says what went wrong; the rest would flood logs.
const answerLen = 512

// RejectedError means the application received the reload and refused the
// new configuration: a non-2xx HTTP answer other than 429, 502, 503 and
// 504, its own *_config_last_reload_successful metric reading 0, or a
// master/worker server keeping its workers. Sending the same content again
// would be refused again, so the caller waits for the content to change.
type RejectedError struct {
	// Target is the process name or the URL without credentials.
	Target string
	// Status is the HTTP status of the answer; 0 when the verdict came
	// from a metric or from the target's children.
	Status int
	// Answer is what the application said: a bounded excerpt of the HTTP
	// body with secrets and URL credentials masked, or which metric (or
	// which children) showed the refusal.
	Answer string
}

// Error returns one line with the target, the status and the answer.
func (e *RejectedError) Error() string {
	s := e.Target + ": reload rejected"
	if e.Status != 0 {
		s += fmt.Sprintf(": status %d %s", e.Status, statusText(e.Status))
	}
	if e.Answer != "" {
		s += ": " + e.Answer
	}
	return s
}

// Is makes errors.Is(err, ErrRejected) hold, which ResultOf maps to
// ResultRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "(unknown status)"
}

// TargetDiedError means the process that was signalled is gone (or its PID
// now belongs to another process) shortly after the signal: the reload
// probably killed it.
type TargetDiedError struct {
	PID    int
	Name   string
	Signal syscall.Signal
	After  time.Duration // how long after the signal it was found gone
}

// Error names the process, the signal and when it was found gone.
func (e *TargetDiedError) Error() string {
	return fmt.Sprintf("pid %d (%s) is gone within %s of %s: the reload signal may have killed it; check the application's log",
		e.PID, e.Name, e.After.Round(time.Millisecond), signalName(e.Signal))
}

// Is makes errors.Is(err, ErrTargetDied) hold, which ResultOf maps to
// ResultTargetDied.
func (e *TargetDiedError) Is(target error) bool { return target == ErrTargetDied }

// TransientStatuses are the HTTP statuses that say "try again later"
// rather than "no": rate limiting, or a proxy in front of an application
// that is not up. They are retried with backoff; any other non-2xx status
// is a rejection.
var TransientStatuses = []int{429, 502, 503, 504}

// transientStatus reports whether code is one of TransientStatuses.
func transientStatus(code int) bool { return slices.Contains(TransientStatuses, code) }

// urlInText finds URLs in an application's answer, to mask their
// credentials and query values.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// excerpt makes an answer safe and short for logs and errors: URLs lose
// their userinfo and query values, every secret is masked, the text is put
// on one line without control characters and cut to answerLen bytes.
func excerpt(body []byte, secrets []string) string {
	s := strings.ToValidUTF8(string(body), "")
	s = urlInText.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			return "(URL)"
		}
		return redactParsed(u)
	})
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > answerLen {
		cut := answerLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// refusal turns a non-2xx answer into an error: a *RejectedError when the
// application said no, a plain (retried) error when it said "later".
func (h *HTTP) refusal(resp *http.Response, body []byte) error {
	answer := excerpt(body, h.secrets())
	if transientStatus(resp.StatusCode) {
		if answer != "" {
			answer = ": " + answer
		}
		return fmt.Errorf("reload %s %s: status %s (retrying)%s", h.method, h.redacted, resp.Status, answer)
	}
	return &RejectedError{Target: h.method + " " + h.redacted, Status: resp.StatusCode, Answer: answer}
}

// urlSecrets returns the password (or lone user name) and query values of
// u: they must not come back through an application's echo of the URL.
func urlSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		p, ok := u.User.Password()
		if ok {
			out = append(out, p)
		} else {
			out = append(out, u.User.Username())
		}
		// The client sends them as basic auth, which an app may echo.
		out = append(out, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p)))
	}
	for _, vs := range u.Query() {
		out = append(out, vs...)
	}
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 4 })
}
