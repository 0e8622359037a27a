package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// TestFUSEWithoutInotify watches directories on FUSE mounts and edits them
// behind the mount's back, in the directory the mount mirrors, as another
// NFS client or the far side of an sshfs would. pollreload must deliver every
// edit; inotifywait, watching the same directory, must see nothing, which is
// why polling is needed at all. A write through the mount then shows that
// inotifywait was listening.
func TestFUSEWithoutInotify(t *testing.T) {
	t.Parallel()
	t.Run("bindfs", func(t *testing.T) {
		t.Parallel()
		backing, mnt := t.TempDir(), t.TempDir()
		testenv.MountBindfs(t, backing, mnt)
		// bindfs passes the backing file's ctime through: the stat
		// signature alone shows a rewrite that keeps size and mtime.
		testBehindTheMount(t, testenv.UniqueName("bindfs"), backing, mnt, "0")
	})
	t.Run("sshfs", func(t *testing.T) {
		t.Parallel()
		backing, mnt := t.TempDir(), t.TempDir()
		mountSSHFS(t, backing, mnt)
		// sshfs (SFTP v3) reports ctime = mtime and an inode number per
		// path: a same-size rewrite that keeps the mtime changes nothing
		// stat shows, and only VERIFY_INTERVAL's periodic re-read sees it.
		testBehindTheMount(t, testenv.UniqueName("sshfs"), backing, mnt, "1s")
	})
}

// testBehindTheMount runs the edits on one mount; target names the reload
// target, unique per mount since the mounts are tested in parallel.
// verify is the VERIFY_INTERVAL the kept-mtime edit runs with.
func testBehindTheMount(t *testing.T, target, backing, mnt, verify string) {
	inotifywait := testenv.RequireTool(t, "inotifywait", "inotify-tools")

	t.Run("plain rewrite", func(t *testing.T) {
		sub := "plain"
		if err := os.Mkdir(filepath.Join(backing, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		v1 := map[string]string{"app.conf": "listen 8080\n", "extra.conf": "x\n"}
		writeFiles(t, filepath.Join(backing, sub), v1)
		watched := filepath.Join(mnt, sub)
		tg, pr, events := startBehindTheMount(t, inotifywait, target, watched, v1)

		// Same size on purpose: only the content differs.
		v2 := map[string]string{"app.conf": "listen 9090\n", "extra.conf": "x\n"}
		writeFiles(t, filepath.Join(backing, sub), v2)
		waitTargetFiles(t, tg, v2)
		checkSilentThenHeard(t, pr, tg, events, watched)
	})

	t.Run("kubelet swap", func(t *testing.T) {
		sub := "kube"
		if err := os.Mkdir(filepath.Join(backing, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		kw := testenv.NewKubeletWriter(filepath.Join(backing, sub))
		v1 := map[string]string{"app.conf": "listen 8080\n", "tls/cert.pem": "cert 1\n"}
		if _, err := kw.Write(v1); err != nil {
			t.Fatal(err)
		}
		watched := filepath.Join(mnt, sub)
		tg, pr, events := startBehindTheMount(t, inotifywait, target, watched, v1)

		v2 := map[string]string{"app.conf": "listen 8080\n", "tls/cert.pem": "cert 2\n", "new.conf": "added\n"}
		if _, err := kw.Write(v2); err != nil {
			t.Fatal(err)
		}
		waitTargetFiles(t, tg, v2)
		checkSilentThenHeard(t, pr, tg, events, watched)
	})

	t.Run("same size and mtime kept", func(t *testing.T) {
		testKeptMtime(t, target, backing, mnt, verify)
	})
}

// testKeptMtime rewrites a file behind the mount with the same size and
// then restores its modification time, as `cp -p`, `rsync -t` and tar do.
// Only the content and the change time (where the file system has one)
// differ; pollreload must still deliver the edit.
func testKeptMtime(t *testing.T, target, backing, mnt, verify string) {
	sub := "kept"
	dir := filepath.Join(backing, sub)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	write := func(files map[string]string) {
		writeFiles(t, dir, files)
		for name := range files {
			if err := os.Chtimes(filepath.Join(dir, name), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	v1 := map[string]string{"app.conf": "replicas: 2\n"}
	write(v1)
	watched := filepath.Join(mnt, sub)
	tg := testenv.StartTarget(t, target, watched)
	waitTargetFilesBySignal(t, tg, v1)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":      watched,
		"PROCESS_NAME":    target,
		"POLL_INTERVAL":   "100ms",
		"SETTLE_TIME":     "300ms",
		"VERIFY_INTERVAL": verify,
		"LOG_LEVEL":       "debug",
	})
	v2 := map[string]string{"app.conf": "replicas: 3\n"}
	write(v2)
	waitTargetFiles(t, tg, v2)
	waitVerifiedReloads(t, pr, 1)
}

// startBehindTheMount waits until the mount shows want in watched, then
// starts the reload target, an inotifywait on watched and pollreload.
func startBehindTheMount(t *testing.T, inotifywait, target, watched string, want map[string]string) (*testenv.Target, *testenv.Pollreload, *testenv.Process) {
	t.Helper()
	tg := testenv.StartTarget(t, target, watched)
	// The mount's attribute cache may lag the backing directory a moment.
	waitTargetFilesBySignal(t, tg, want)
	// Every event that means "something changed"; reads (OPEN, ACCESS)
	// are left out, pollreload and the target read all the time.
	iw := testenv.Spawn(t, "inotifywait", exec.Command(inotifywait, "-m", "-r",
		"-e", "modify,attrib,close_write,moved_to,moved_from,move_self,create,delete,delete_self",
		"--format", "%w%f %e", watched))
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if !strings.Contains(iw.Output(), "Watches established.") {
			return fmt.Errorf("inotifywait not ready: %q", iw.Output())
		}
		return nil
	})
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    watched,
		"PROCESS_NAME":  target,
		"POLL_INTERVAL": "100ms",
		"SETTLE_TIME":   "300ms",
		"LOG_LEVEL":     "debug",
	})
	return tg, pr, iw
}

// waitTargetFilesBySignal signals the target until it reads want, for
// setup, before pollreload runs.
func waitTargetFilesBySignal(t *testing.T, tg *testenv.Target, want map[string]string) {
	t.Helper()
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if last := tg.Last(t); fmt.Sprint(last.Files) == fmt.Sprint(want) {
			return nil
		}
		tg.Signal(1) // SIGHUP: read again
		time.Sleep(100 * time.Millisecond)
		return fmt.Errorf("target %s reads %v; want %v", tg.Name, tg.Last(t).Files, want)
	})
}

// checkSilentThenHeard checks after a delivered edit behind the mount that
// there was exactly one reload, that inotifywait saw nothing even after a
// few more scans, and that it does report a write made through the mount.
func checkSilentThenHeard(t *testing.T, pr *testenv.Pollreload, tg *testenv.Target, iw *testenv.Process, watched string) {
	t.Helper()
	base := len(tg.Reloads(t))
	waitScans(t, pr, 3)
	if got := inotifyEvents(iw); got != "" {
		t.Errorf("inotifywait reported %q for an edit behind the mount; want nothing", got)
	}
	if got := len(tg.Reloads(t)); got != 1 || base != 1 {
		t.Errorf("target reloaded %d times (%d at delivery); want 1", got, base)
	}
	waitVerifiedReloads(t, pr, 1)
	control := filepath.Join(watched, "through-the-mount")
	if err := os.WriteFile(control, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if !strings.Contains(inotifyEvents(iw), "through-the-mount") {
			return fmt.Errorf("inotifywait silent about a write through the mount: %q", iw.Output())
		}
		return nil
	})
	events := strings.Split(inotifyEvents(iw), "\n")
	t.Logf("%s: edit behind the mount delivered in 1 reload; inotifywait saw nothing, then %d events for a write through the mount (first: %s)",
		filepath.Base(watched), len(events), strings.TrimPrefix(events[0], watched+"/"))
}

// inotifyEvents returns the event lines inotifywait printed after it
// established its watches.
func inotifyEvents(iw *testenv.Process) string {
	_, events, _ := strings.Cut(iw.Output(), "Watches established.\n")
	return strings.TrimSpace(events)
}

// writeFiles rewrites each file in dir in place (truncate, then write).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sshdConfig runs sshd on 127.0.0.1 only, with keys from the test's
// directory and nothing from /etc/ssh.
const sshdConfig = `ListenAddress 127.0.0.1
Port %d
HostKey %s/host_key
PidFile none
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
`

// mountSSHFS starts an sshd on a free port of 127.0.0.1 and mounts backing
// at mnt through it with sshfs: a network file system that no inotify
// event crosses.
func mountSSHFS(t *testing.T, backing, mnt string) {
	t.Helper()
	sshd := testenv.RequireTool(t, "sshd", "openssh-server")
	keygen := testenv.RequireTool(t, "ssh-keygen", "openssh-client")
	sshfs := testenv.RequireTool(t, "sshfs", "sshfs")
	testenv.RequireTool(t, "fusermount", "fuse3")
	keys := t.TempDir()
	for _, name := range []string{"host_key", "id"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(keys, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(filepath.Join(keys, "id.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	conf := filepath.Join(keys, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(sshdConfig, port, keys, keys)), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd's privilege separation needs this directory; the package
	// creates it at boot through systemd, which a container lacks.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	// -D: foreground, -e: log to stderr (shown if the test fails).
	d := testenv.Spawn(t, "sshd", exec.Command(sshd, "-D", "-e", "-f", conf))
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if d.Exited() {
			t.Fatalf("sshd exited: %v\n%s", d.Wait(0), d.Output())
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		return c.Close()
	})
	testenv.MountFUSE(t, "sshfs", exec.Command(sshfs, "-f",
		"-p", fmt.Sprint(port),
		"-o", "IdentityFile="+filepath.Join(keys, "id"),
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR",
		// sshfs caches directory listings and attributes for 20s by
		// default; a user who wants edits picked up within seconds turns
		// that off, and so does this test (the kernel's 1s attribute
		// cache remains).
		"-o", "dir_cache=no",
		"root@127.0.0.1:"+backing, mnt), mnt)
}
