package e2e

import (
	"testing"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestKubeletSlowLinkFixup holds kubelet's window between the `..data` swap
// and the visible-link fix-up open for three of pollreload's scans, as a
// loaded node can (the soak saw a single write take 70ms), during an update
// that adds one key and removes another. An application reads the volume
// through its visible names. Once the window closes it must run with the
// whole new state: the added key present, the removed one gone. A reload
// sent inside the window alone leaves it without the new key for good,
// since nothing that pollreload hashes changes when the links are fixed.
func TestKubeletSlowLinkFixup(t *testing.T) {
	t.Parallel()
	vol := t.TempDir()
	kw := testenv.NewKubeletWriter(vol)
	if _, err := kw.Write(map[string]string{"app.conf": "v1\n", "old.conf": "old\n"}); err != nil {
		t.Fatal(err)
	}
	tg := testenv.StartTarget(t, testenv.UniqueName("links"), vol)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    vol,
		"PROCESS_NAME":  tg.Name,
		"POLL_INTERVAL": "100ms",
	})
	kw.AfterSwap = func() { waitScans(t, pr, 3) }
	v2 := map[string]string{"app.conf": "v2\n", "new.conf": "new\n"}
	if _, err := kw.Write(v2); err != nil {
		t.Fatal(err)
	}
	waitTargetFiles(t, tg, v2)
}
