package signaler

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"

	promconfig "github.com/prometheus/common/config"

	"github.com/pollreload/pollreload/internal/filetype"
)

// This file builds the HTTP client that reload and verification URLs are
// called with: authentication and TLS come from prometheus/common's
// config.HTTPClientConfig, the code Prometheus itself scrapes with, rather
// than from options written by hand.

// ClientOptions configures the HTTP client of reloads and verification. Every
// secret is named by a file and read again on each request, so a rotated
// Kubernetes Secret takes effect without a restart.
type ClientOptions struct {
	// BearerTokenFile holds the token sent as "Authorization: Bearer"
	// (RELOAD_BEARER_TOKEN_FILE).
	BearerTokenFile string
	// BasicAuthUsername and BasicAuthPasswordFile enable basic auth
	// (RELOAD_BASIC_AUTH_USERNAME, RELOAD_BASIC_AUTH_PASSWORD_FILE).
	BasicAuthUsername     string
	BasicAuthPasswordFile string
	// CAFile verifies the server's certificate (RELOAD_CA_FILE); empty
	// means the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate for mTLS
	// (RELOAD_CERT_FILE, RELOAD_KEY_FILE).
	CertFile string
	KeyFile  string
	// Headers are added to every request (RELOAD_HEADERS, see ParseHeaders).
	// Their values may be secrets: they are never logged.
	Headers http.Header
}

// HeaderError is a header list ParseHeaders refuses. It never holds a
// header's value, which may be a secret.
type HeaderError struct {
	// Name is the header's canonical name, "" when the pair has none.
	Name string
	// Reserved is set for a header the client sets itself (Authorization,
	// Host, User-Agent, ...): credentials have options of their own.
	Reserved bool
	// Problem says what is wrong and what is accepted.
	Problem string
}

func (e *HeaderError) Error() string { return e.Problem }

// ParseHeaders reads a header list: comma-separated "Name: value" pairs,
// as in "X-Scope-OrgID: team-a, X-Env: prod". A name may repeat. Headers
// that the client sets itself (Authorization, Host, User-Agent, ...) are
// refused (HeaderError.Reserved): credentials have options of their own.
func ParseHeaders(s string) (http.Header, error) {
	h := http.Header{}
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			// The pair may be a secret: name only its position's shape.
			return nil, &HeaderError{Problem: `want comma-separated "Name: value" pairs, such as "X-Scope-OrgID: team-a"`}
		case !isToken(name):
			return nil, &HeaderError{Name: name, Problem: fmt.Sprintf("header name %q is not a valid HTTP header name", name)}
		}
		canon := http.CanonicalHeaderKey(name)
		if i := strings.IndexFunc(value, badHeaderValueRune); i >= 0 {
			// The value may be a secret: say what is wrong, never what it is.
			return nil, &HeaderError{Name: canon, Problem: fmt.Sprintf("the value of header %s holds %s, which HTTP does not allow in a header value (every request would fail); want printable text", canon, describeControl(rune(value[i])))}
		}
		if _, reserved := promconfig.ReservedHeaders[canon]; reserved {
			return nil, &HeaderError{Name: canon, Reserved: true, Problem: fmt.Sprintf("header %s is set by pollreload itself", canon)}
		}
		h.Add(name, value)
	}
	return h, nil
}

// badHeaderValueRune reports the bytes RFC 9110 forbids in a field value:
// control characters other than horizontal tab (CR and LF would end the
// header early), and DEL. Go's transport refuses such a request, so a value
// holding one would fail every reload.
func badHeaderValueRune(r rune) bool {
	return r < ' ' && r != '\t' || r == 0x7f
}

// describeControl names a control character without showing the text
// around it.
func describeControl(r rune) string {
	switch r {
	case '\r':
		return "a carriage return (CR)"
	case '\n':
		return "a line feed (LF)"
	case 0:
		return "a NUL byte"
	}
	return fmt.Sprintf("the control character %U", r)
}

// isToken reports whether s is an RFC 9110 token, the syntax of header names.
func isToken(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) < 0
}

// NewHTTPClient returns a client for the options. It never follows
// redirects: a reload endpoint that redirects is misconfigured, and a POST
// turned into a GET would not reload anything. Every named file must be
// readable now; later read errors fail the request they happen in.
func NewHTTPClient(opts ClientOptions) (*http.Client, error) {
	cfg, err := opts.httpClientConfig()
	if err != nil {
		return nil, err
	}
	client, err := promconfig.NewClientFromConfig(cfg, "pollreload",
		promconfig.WithUserAgent("pollreload"), promconfig.WithKeepAlivesDisabled(),
		promconfig.WithSecretManager(opts.secretFiles()))
	if err != nil {
		return nil, fmt.Errorf("build HTTP client: %w", err)
	}
	return client, nil
}

// Validate checks the combinations of options without reading any file.
// Its errors name the fields of ClientOptions; a program that reads its
// settings from elsewhere checks them first, in its own words.
func (o ClientOptions) Validate() error {
	switch {
	case o.BearerTokenFile != "" && (o.BasicAuthUsername != "" || o.BasicAuthPasswordFile != ""):
		return errors.New("ClientOptions: set BearerTokenFile or BasicAuthUsername, not both")
	case (o.BasicAuthUsername == "") != (o.BasicAuthPasswordFile == ""):
		return errors.New("ClientOptions: BasicAuthUsername and BasicAuthPasswordFile go together")
	case (o.CertFile == "") != (o.KeyFile == ""):
		return errors.New("ClientOptions: CertFile and KeyFile go together")
	}
	return nil
}

// CheckSecretFile reports whether path can serve as a credential file now:
// a readable regular file of at most MaxSecretFile bytes. The error says
// what is wrong, without the path or the content.
func CheckSecretFile(path string) error {
	_, err := readSecretFile(path)
	return err
}

// httpClientConfig turns the options into prometheus/common's configuration
// after checking the combinations and files.
func (o ClientOptions) httpClientConfig() (promconfig.HTTPClientConfig, error) {
	if err := o.Validate(); err != nil {
		return promconfig.HTTPClientConfig{}, err
	}
	for path, field := range o.secretFiles() {
		if _, err := readSecretFile(path); err != nil {
			return promconfig.HTTPClientConfig{}, &SecretFileError{Field: field, Path: path, Err: err}
		}
	}
	// Every file is named by reference, not as a *_file setting: the
	// client then reads it through secretFiles, which bounds its size,
	// where prometheus/common would read any size (os.ReadFile) on every
	// request.
	cfg := promconfig.HTTPClientConfig{
		FollowRedirects: false,
		EnableHTTP2:     true,
		TLSConfig: promconfig.TLSConfig{
			CARef:   o.CAFile,
			CertRef: o.CertFile,
			KeyRef:  o.KeyFile,
		},
	}
	if o.BearerTokenFile != "" {
		cfg.Authorization = &promconfig.Authorization{Type: "Bearer", CredentialsRef: o.BearerTokenFile}
	}
	if o.BasicAuthUsername != "" {
		cfg.BasicAuth = &promconfig.BasicAuth{Username: o.BasicAuthUsername, PasswordRef: o.BasicAuthPasswordFile}
	}
	if len(o.Headers) > 0 {
		hs := &promconfig.Headers{Headers: map[string]promconfig.Header{}}
		for name, values := range o.Headers {
			var secrets []promconfig.Secret
			for _, v := range values {
				secrets = append(secrets, promconfig.Secret(v))
			}
			hs.Headers[name] = promconfig.Header{Secrets: secrets}
		}
		cfg.HTTPHeaders = hs
	}
	if err := cfg.Validate(); err != nil {
		return promconfig.HTTPClientConfig{}, fmt.Errorf("HTTP client settings: %w", err)
	}
	return cfg, nil
}

// MaxSecretFile bounds a token, password, CA, certificate or key file:
// 1 MiB, the most a Kubernetes Secret holds. A CA bundle of every public
// root (Debian's ca-certificates.crt) is about 200 KiB. Without a bound, a
// token file pointed at something huge is read in full on every request.
const MaxSecretFile = 1 << 20

// readSecretFile reads a credential file: a regular file (opened without
// blocking, so a FIFO put in its place cannot hang a request) of at most
// MaxSecretFile bytes. The errors leave the path to the caller and never
// hold the content.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("want a readable file: %w", errors.Unwrap(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("want a regular file, not a %s", filetype.Name(fi.Mode()))
	}
	if fi.Size() > MaxSecretFile {
		return nil, fmt.Errorf("%d bytes, over the %d-byte (1 MiB) limit of a credential file; want the token, password or PEM file itself", fi.Size(), MaxSecretFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", errors.Unwrap(err))
	}
	if len(b) > MaxSecretFile {
		// It grew after the stat, or reports no size.
		return nil, fmt.Errorf("more than %d bytes read, over the limit of a credential file (1 MiB)", MaxSecretFile)
	}
	return b, nil
}

// SecretFileError is a credential file that cannot be read: at start
// (NewHTTPClient) or on a request, which rereads it.
type SecretFileError struct {
	// Field is the ClientOptions field that names the file, such as
	// "BearerTokenFile".
	Field string
	Path  string
	Err   error
}

func (e *SecretFileError) Error() string {
	return fmt.Sprintf("credential file %s: %v", e.Path, e.Err)
}

func (e *SecretFileError) Unwrap() error { return e.Err }

// secretFiles reads the credential files for the HTTP client: it is the
// client's promconfig.SecretManager, and each reference is a file path.
type secretFiles map[string]string // path → the ClientOptions field that names it

func (o ClientOptions) secretFiles() secretFiles {
	m := secretFiles{}
	for v, path := range map[string]string{
		"BearerTokenFile": o.BearerTokenFile, "BasicAuthPasswordFile": o.BasicAuthPasswordFile,
		"CAFile": o.CAFile, "CertFile": o.CertFile, "KeyFile": o.KeyFile,
	} {
		if path != "" {
			m[path] = v
		}
	}
	return m
}

// Fetch implements promconfig.SecretManager: it rereads the file on every
// request, as prometheus/common does with its own *_file settings, so a
// rotated token or certificate is used at once.
func (s secretFiles) Fetch(_ context.Context, path string) (string, error) {
	v, ok := s[path]
	if !ok {
		return "", fmt.Errorf("no credential file %s", path)
	}
	b, err := readSecretFile(path)
	if err != nil {
		return "", &SecretFileError{Field: v, Path: path, Err: err}
	}
	return strings.TrimSpace(string(b)), nil
}

// secrets returns what must never appear in a log or an error: the current
// contents of the credential files and the header values. An application
// that echoes a request back in its error page cannot leak them through the
// rejected reload's excerpt.
func (o ClientOptions) secrets() []string {
	var out []string
	for _, f := range []string{o.BearerTokenFile, o.BasicAuthPasswordFile} {
		if f == "" {
			continue
		}
		if b, err := readSecretFile(f); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	if o.BasicAuthUsername != "" {
		if b, err := readSecretFile(o.BasicAuthPasswordFile); err == nil {
			// The Authorization header as sent, should the app echo it.
			out = append(out, base64.StdEncoding.EncodeToString([]byte(o.BasicAuthUsername+":"+strings.TrimSpace(string(b)))))
		}
	}
	for _, vs := range o.Headers {
		out = append(out, vs...)
	}
	return slices.DeleteFunc(out, func(s string) bool { return len(s) < 4 })
}

// Describe says how the client authenticates, without any secret: for
// `pollreload check`.
func (o ClientOptions) Describe() string {
	var parts []string
	switch {
	case o.BearerTokenFile != "":
		parts = append(parts, "bearer token from "+o.BearerTokenFile)
	case o.BasicAuthUsername != "":
		parts = append(parts, fmt.Sprintf("basic auth as %q, password from %s", o.BasicAuthUsername, o.BasicAuthPasswordFile))
	}
	if o.CAFile != "" {
		parts = append(parts, "CA "+o.CAFile)
	}
	if o.CertFile != "" {
		parts = append(parts, "client certificate "+o.CertFile)
	}
	if len(o.Headers) > 0 {
		names := make([]string, 0, len(o.Headers))
		for n := range o.Headers {
			names = append(names, n)
		}
		slices.Sort(names)
		parts = append(parts, "headers "+strings.Join(names, ", ")+" (values hidden)")
	}
	if len(parts) == 0 {
		return "no authentication"
	}
	return strings.Join(parts, "; ")
}

// Handshake connects to rawURL's host as the client NewHTTPClient(o)
// builds would, and closes the connection without sending a request: for
// `pollreload check`, which must not reload anything. For https it runs
// the TLS handshake with the TLS settings that client uses (built by the
// same prometheus/common code from RELOAD_CA_FILE, RELOAD_CERT_FILE and
// RELOAD_KEY_FILE, the system's roots otherwise), so a certificate every
// reload would fail on fails here too. It returns what it verified.
func (o ClientOptions) Handshake(ctx context.Context, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", errors.New("not an absolute URL")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme != "https" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return "", err
		}
		conn.Close()
		return "TCP connect to " + host + "; no request sent", nil
	}
	cfg, err := o.httpClientConfig()
	if err != nil {
		return "", err
	}
	tlsCfg, err := promconfig.NewTLSConfig(&cfg.TLSConfig, promconfig.WithSecretManager(o.secretFiles()))
	if err != nil {
		return "", fmt.Errorf("TLS settings: %w", err)
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	d := tls.Dialer{Config: tlsCfg}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	subject := "(no certificate)"
	if len(st.PeerCertificates) > 0 {
		c := st.PeerCertificates[0]
		subject = c.Subject.CommonName
		if len(c.DNSNames) > 0 {
			subject = strings.Join(c.DNSNames, ",")
		}
	}
	return fmt.Sprintf("TLS handshake with %s, %s, certificate for %s verified; no request sent", host, tls.VersionName(st.Version), subject), nil
}
