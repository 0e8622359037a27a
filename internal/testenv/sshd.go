package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sshdConfig is a complete sshd_config for a test: port %[1]d on
// 127.0.0.1, the host key and PID file in the private directory %[2]s, the
// word %[3]s appended to the server's identification line (what a client
// reads first, so a test can see which configuration runs without logging
// in), and %[4]s for more lines (one sshd refuses, say).
const sshdConfig = `Port %[1]d
ListenAddress 127.0.0.1
HostKey %[2]s/hostkey
PidFile %[2]s/sshd.pid
UsePAM no
PasswordAuthentication no
VersionAddendum %[3]s
%[4]s
`

// SSHD is an OpenSSH server (Debian's openssh-server) that a test started
// on 127.0.0.1: its sshd_config alone in Dir, the directory pollreload
// watches; its host key and PID file in a private directory. On SIGHUP
// sshd re-executes itself in place (same PID and start time) with the
// configuration it finds, and exits if that configuration is bad.
type SSHD struct {
	Dir     string // the watched directory; holds only sshd_config
	Config  string // Dir/sshd_config
	PIDFile string // written by sshd
	Port    int
	Bin     string // the absolute path of sshd
	Proc    *Process
	private string
}

// StartSSHD starts sshd in the foreground (-D, logging to stderr) with a
// configuration whose identification ends in addendum, and waits until it
// answers. sshd must be started by its absolute path to re-execute itself.
func StartSSHD(t testing.TB, addendum string) *SSHD {
	t.Helper()
	bin := RequireTool(t, "sshd", "openssh-server")
	keygen := RequireTool(t, "ssh-keygen", "openssh-client")
	// sshd refuses to start without its privilege separation directory,
	// which Debian creates only when the service runs.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd needs /run/sshd: %v", err)
	}
	s := &SSHD{Dir: filepath.Join(t.TempDir(), "config"), private: t.TempDir(), Port: FreePort(t), Bin: bin}
	s.Config = filepath.Join(s.Dir, "sshd_config")
	s.PIDFile = filepath.Join(s.private, "sshd.pid")
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(s.private, "hostkey")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	s.Write(t, addendum, "")
	s.Proc = Spawn(t, "sshd", exec.Command(bin, "-D", "-e", "-f", s.Config))
	WaitFor(t, 30*time.Second, func() error {
		if s.Proc.Exited() {
			t.Fatalf("sshd exited: %v", s.Proc.Wait(0))
		}
		if _, err := ReadPIDFile(s.PIDFile); err != nil {
			return err
		}
		got, err := s.Version(context.Background())
		if err == nil && !strings.HasSuffix(got, " "+addendum) {
			err = fmt.Errorf("sshd says %q; want it to end in %q", got, addendum)
		}
		return err
	})
	return s
}

// Write rewrites sshd_config in place with the addendum and extra lines.
func (s *SSHD) Write(t testing.TB, addendum, extra string) {
	t.Helper()
	if err := os.WriteFile(s.Config, []byte(fmt.Sprintf(sshdConfig, s.Port, s.private, addendum, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// CheckCommand is the command that validates the configuration as
// Debian's ssh.service does before its reload: sshd -t -f CONFIG.
func (s *SSHD) CheckCommand() string { return s.Bin + " -t -f " + s.Config }

// Version returns the server's identification line, such as
// "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 v2": what sshd sends first on a
// new connection, ending in the configured VersionAddendum.
func (s *SSHD) Version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read the identification of sshd on port %d: %w", s.Port, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ReadPIDFile returns the PID a daemon wrote to path.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("PID file %s holds %q", path, b)
	}
	return pid, nil
}
