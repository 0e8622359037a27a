package signaler

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all written to files as a Kubernetes Secret would mount them.
type testPKI struct {
	caFile, certFile, keyFile string // CA, client cert and key
	pool                      *x509.CertPool
	server                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pollreload test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "pollreload test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliDER, cliKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	cliKeyDER, _ := x509.MarshalECPrivateKey(cliKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caFile:   write("ca.crt", "CERTIFICATE", caDER),
		certFile: write("client.crt", "CERTIFICATE", cliDER),
		keyFile:  write("client.key", "EC PRIVATE KEY", cliKeyDER),
		pool:     pool,
		server:   tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
	}
}

// seen is what an authenticated test server saw of one request.
type seen struct {
	auth, user, pass, tenant, accept string
	clientCert                       bool
}

// authServer is an HTTPS server on 127.0.0.1 that demands a client
// certificate signed by the test CA and records each request's credentials.
type authServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
	code int
	body string
}

func newAuthServer(t *testing.T, pki testPKI) *authServer {
	t.Helper()
	a := &authServer{code: 200}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		a.mu.Lock()
		a.reqs = append(a.reqs, seen{auth: r.Header.Get("Authorization"), user: user, pass: pass,
			tenant: r.Header.Get("X-Scope-OrgID"), accept: r.Header.Get("Accept"),
			clientCert: r.TLS != nil && len(r.TLS.PeerCertificates) > 0})
		code, body := a.code, a.body
		a.mu.Unlock()
		w.WriteHeader(code)
		// An error page that echoes the request's credentials back.
		_, _ = w.Write([]byte(strings.NewReplacer("{auth}", r.Header.Get("Authorization"), "{tenant}", r.Header.Get("X-Scope-OrgID")).Replace(body)))
	})}}
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *authServer) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.reqs...)
}

// TestHTTPClientMTLSAndRotatedToken reloads over mTLS with a bearer token
// that is rewritten between two reloads, as a rotated Secret is: the second
// request must carry the new token without a restart.
func TestHTTPClientMTLSAndRotatedToken(t *testing.T) {
	pki := newTestPKI(t)
	srv := newAuthServer(t, pki)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	headers, err := ParseHeaders("X-Scope-OrgID: tenant-secret-1")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h, err := NewHTTP(HTTPOptions{URL: srv.srv.URL + "/-/reload", Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth: ClientOptions{BearerTokenFile: tokenFile, CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile, Headers: headers}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(t.Context(), time.Now()); err != nil {
		t.Fatalf("first reload: %v", err)
	}
	if err := os.WriteFile(tokenFile, []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(t.Context(), time.Now()); err != nil {
		t.Fatalf("second reload: %v", err)
	}
	got := srv.requests()
	want := []seen{
		{auth: "Bearer token-one", tenant: "tenant-secret-1", clientCert: true},
		{auth: "Bearer token-two", tenant: "tenant-secret-1", clientCert: true},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("server saw %+v; want %+v", got, want)
	}

	// The app refuses and echoes the credentials in its error page: the
	// rejection keeps the answer but none of the secrets.
	srv.mu.Lock()
	srv.code, srv.body = 400, "bad config; you sent Authorization={auth} org={tenant}"
	srv.mu.Unlock()
	_, err = h.Reload(t.Context(), time.Now())
	if Reason(err) != "rejected" || !strings.Contains(err.Error(), "you sent Authorization=Bearer xxxxx org=xxxxx") {
		t.Fatalf("Reload = %v (reason %s); want rejected with the secrets masked", err, Reason(err))
	}
	for _, secret := range []string{"token-one", "token-two", "tenant-secret-1"} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q revealed: error %q, logs %q", secret, err, logs.String())
		}
	}
}

// TestHTTPClientBasicAuth sends basic auth with the password from a file.
func TestHTTPClientBasicAuth(t *testing.T) {
	pki := newTestPKI(t)
	srv := newAuthServer(t, pki)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHTTP(HTTPOptions{URL: srv.srv.URL + "/-/reload",
		Auth: ClientOptions{BasicAuthUsername: "reloader", BasicAuthPasswordFile: pwFile, CAFile: pki.caFile, CertFile: pki.certFile, KeyFile: pki.keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(t.Context(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests(); len(got) != 1 || got[0].user != "reloader" || got[0].pass != "pw-from-file" {
		t.Fatalf("server saw %+v; want basic auth reloader:pw-from-file", got)
	}
}

// TestHTTPClientTLSFailures shows that TLS is really checked: without the CA
// the server is not trusted, without the client certificate the server
// refuses the handshake. Both are transport errors, retried, not rejections.
func TestHTTPClientTLSFailures(t *testing.T) {
	pki := newTestPKI(t)
	srv := newAuthServer(t, pki)
	tests := []struct {
		name    string
		auth    ClientOptions
		wantErr string
	}{
		{"no CA", ClientOptions{CertFile: pki.certFile, KeyFile: pki.keyFile}, "certificate signed by unknown authority"},
		{"no client certificate", ClientOptions{CAFile: pki.caFile}, "certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHTTP(HTTPOptions{URL: srv.srv.URL + "/-/reload", Auth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Reload(t.Context(), time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || Reason(err) != "error" {
				t.Fatalf("Reload = %v (reason %s); want a retried error containing %q", err, Reason(err), tt.wantErr)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("server handled %d requests; want none without a valid handshake", n)
	}
}

func TestClientOptionsRejected(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    ClientOptions
		wantErr string
	}{
		{"token and basic auth", ClientOptions{BearerTokenFile: file, BasicAuthUsername: "u", BasicAuthPasswordFile: file}, "ClientOptions: set BearerTokenFile or BasicAuthUsername, not both"},
		{"user without password", ClientOptions{BasicAuthUsername: "u"}, "ClientOptions: BasicAuthUsername and BasicAuthPasswordFile go together"},
		{"password without user", ClientOptions{BasicAuthPasswordFile: file}, "ClientOptions: BasicAuthUsername and BasicAuthPasswordFile go together"},
		{"cert without key", ClientOptions{CertFile: file}, "ClientOptions: CertFile and KeyFile go together"},
		{"missing token file", ClientOptions{BearerTokenFile: filepath.Join(dir, "nope")}, `credential file ` + dir + `/nope: want a readable file: no such file or directory`},
		{"CA is a directory", ClientOptions{CAFile: dir}, `credential file ` + dir + `: want a regular file, not a d`},
		{"CA not PEM", ClientOptions{CAFile: file}, "unable to use specified CA cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTPClient(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewHTTPClient error = %v; want one containing %q", err, tt.wantErr)
			}
			var fe *SecretFileError
			if strings.HasPrefix(tt.wantErr, "credential file") && (!errors.As(err, &fe) || fe.Field == "" || fe.Path == "") {
				t.Errorf("NewHTTPClient error = %#v; want a *SecretFileError naming the field and the path", err)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		in      string
		want    http.Header
		wantErr string
	}{
		{in: "", want: http.Header{}},
		{in: "X-Scope-OrgID: team-a, x-env:prod ,X-Env: dev", want: http.Header{"X-Scope-Orgid": {"team-a"}, "X-Env": {"prod", "dev"}}},
		{in: "X-Token: a:b:c", want: http.Header{"X-Token": {"a:b:c"}}},
		{in: "novalue-secret", wantErr: `want comma-separated "Name: value" pairs`},
		{in: "Bad Name: v", wantErr: `header name "Bad Name" is not a valid HTTP header name`},
		{in: "authorization: Bearer x", wantErr: "header Authorization is set by pollreload itself"},
		{in: "Host: example", wantErr: "header Host is set by pollreload itself"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHeaders(tt.in)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseHeaders(%q) error = %v; want %q", tt.in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q repeats the value", err)
				}
				var he *HeaderError
				if !errors.As(err, &he) || he.Reserved != strings.Contains(tt.wantErr, "itself") {
					t.Errorf("ParseHeaders(%q) error = %#v; want a *HeaderError, Reserved only for a header the client sets", tt.in, err)
				}
			case err != nil:
				t.Fatalf("ParseHeaders(%q): %v", tt.in, err)
			case len(got) != len(tt.want):
				t.Fatalf("ParseHeaders(%q) = %v; want %v", tt.in, got, tt.want)
			default:
				for k, v := range tt.want {
					if strings.Join(got[k], "|") != strings.Join(v, "|") {
						t.Errorf("ParseHeaders(%q)[%s] = %q; want %q", tt.in, k, got[k], v)
					}
				}
			}
		})
	}
}

func TestClientOptionsDescribeHidesSecrets(t *testing.T) {
	h, _ := ParseHeaders("X-Api-Key: key-secret-value")
	got := ClientOptions{BasicAuthUsername: "reloader", BasicAuthPasswordFile: "/var/run/secrets/pw", CAFile: "/ca.crt", Headers: h}.Describe()
	want := `basic auth as "reloader", password from /var/run/secrets/pw; CA /ca.crt; headers X-Api-Key (values hidden)`
	if got != want {
		t.Errorf("Describe = %q; want %q", got, want)
	}
}
