package poller

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/pollreload/pollreload/hasher"
)

// TestLoggedDigestsAreKeyed is issue 9 #12: a digest in the logs must not
// be one an attacker can recompute from a guess of the content. The loop
// logs HMAC-SHA256 fingerprints under a per-process random key: never the
// content digest, stable within one process, different in the next.
func TestLoggedDigestsAreKeyed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "pin"), "123456")
	snap, err := hasher.New(hasher.Options{}).Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var c combiner
	raw := []string{fmt.Sprintf("%016x", snap.Digest), fmt.Sprintf("%016x", c.digest([]*hasher.Snapshot{snap}))}

	logged := func() string {
		var logs syncBuffer
		h := start(t, Options{Roots: []string{dir}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		h.stop()
		m := regexp.MustCompile(`msg="baseline taken" files=1 digest=([0-9a-f]+)`).FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no baseline line with a digest:\n%s", logs.String())
		}
		return m[1]
	}
	first, second := logged(), logged()
	if len(first) != 16 {
		t.Errorf("fingerprint %q: want 16 hex digits (8 bytes)", first)
	}
	for _, r := range raw {
		if first == r || second == r {
			t.Errorf("the log shows the content digest %s", r)
		}
	}
	if first == second {
		t.Errorf("two processes logged the same fingerprint %s for the same content; want per-process keys", first)
	}

	f := newFingerprinter()
	if a, b := f.of(snap.Digest), f.of(snap.Digest); a != b {
		t.Errorf("one fingerprinter gave %s and %s for one digest; want equal", a, b)
	}
	if a, b := f.of(1), f.of(2); a == b {
		t.Errorf("digests 1 and 2 share the fingerprint %s", a)
	}
}
