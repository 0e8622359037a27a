package signaler

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCredentialFilesBounded is issue 21 #17: a token file that grows to
// 200 MB after start (sparse, so it costs no disk) fails the request that
// would read it, naming the variable and the limit, and the heap does not
// grow by the file's size; before, prometheus/common read the whole file
// on every request (a 200 MB token took RSS to 600 MB). The same holds for
// the CA file, read through the same bounded reader.
func TestCredentialFilesBounded(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHTTP(HTTPOptions{URL: srv.URL + "/-/reload", Auth: ClientOptions{BearerTokenFile: tokenFile}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Reload(t.Context(), time.Now()); err != nil {
		t.Fatalf("first reload: %v", err)
	}
	if err := os.Truncate(tokenFile, 200<<20); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = h.Reload(t.Context(), time.Now())
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("reload with a 200 MB token file succeeded; want it refused")
	}
	for _, want := range []string{"credential file " + tokenFile, "209715200 bytes, over the 1048576-byte (1 MiB) limit"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// The field is kept for the caller, which names its own setting.
	if fe := (*SecretFileError)(nil); !errors.As(err, &fe) || fe.Field != "BearerTokenFile" {
		t.Errorf("error %#v: want a *SecretFileError of BearerTokenFile", err)
	}
	if strings.Contains(err.Error(), "token-one") {
		t.Errorf("error shows the token: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("the refused request allocated %d bytes; want far less than the file's 200 MB", grew)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests; want only the first", n)
	}

	t.Run("CA file", func(t *testing.T) {
		pki := newTestPKI(t)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		b, err := os.ReadFile(pki.caFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ca, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := NewHTTPClient(ClientOptions{CAFile: ca}); err != nil {
			t.Fatalf("client with a CA of %d bytes: %v", len(b), err)
		}
		if err := os.Truncate(ca, MaxSecretFile+1); err != nil {
			t.Fatal(err)
		}
		_, err = NewHTTPClient(ClientOptions{CAFile: ca})
		if err == nil || !strings.Contains(err.Error(), "over the 1048576-byte (1 MiB) limit of a credential file") {
			t.Errorf("client with a CA file over the limit = %v; want refused", err)
		}
	})
}
