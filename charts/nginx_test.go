package charts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestExampleReloadsNginx runs the chart's installable example without a
// cluster: the real nginx with the rendered ConfigMap, laid out the way the
// kubelet lays out a ConfigMap volume, and the real pollreload with the
// rendered sidecar environment. Then it updates the ConfigMap the way the
// kubelet does (a new timestamped directory, ..data swapped) and expects nginx
// to answer with the new text without a restart, as the chart's NOTES say.
//
// Two changes to the rendered pod keep the test to itself on a shared
// machine: nginx listens on a free loopback port instead of 8080, and the
// sidecar finds nginx by its PID file instead of by name (PROCESS_NAME=nginx
// would also signal any other nginx on the machine).
func TestExampleReloadsNginx(t *testing.T) {
	nginxBin := requireTool(t, "nginx", "apt-get install -y nginx-light")
	bin := buildDaemon(t)
	objects := decodeStrict(t, "default", render(t, chartDir))
	var config string
	for _, o := range objects {
		if cm, ok := o.Value.(*corev1.ConfigMap); ok {
			config = cm.Data["default.conf"]
		}
	}
	if !strings.Contains(config, "listen 8080;") {
		t.Fatalf("got ConfigMap default.conf %q; want a server listening on 8080", config)
	}
	sidecar := sidecarOf(&onlyDeployment(t, objects).Spec.Template.Spec)
	if sidecar == nil {
		t.Fatal("no sidecar in the default rendering")
	}
	env := envOf(sidecar)

	dir := t.TempDir()
	port := freePort(t)
	config = strings.Replace(config, "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	volume := filepath.Join(dir, env["CONFIG_DIR"]) // the ConfigMap volume, as the kubelet writes it
	writeKubeletVolume(t, volume, "..2026_01_01", map[string]string{"default.conf": config})

	pidFile := filepath.Join(dir, "nginx.pid")
	mainConf := filepath.Join(dir, "nginx.conf")
	writeFile(t, mainConf, fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s/*.conf;
}
`, dir, volume))
	if out, err := exec.Command(nginxBin, "-t", "-e", "stderr", "-p", dir, "-c", mainConf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the chart's config: %v\n%s", err, out)
	}
	startProcess(t, "nginx", exec.Command(nginxBin, "-e", "stderr", "-p", dir, "-c", mainConf))

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitForBody(t, url, "hello from nginx, reloaded by pollreload")
	masterPID, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("read nginx's PID file: %v", err)
	}

	env["CONFIG_DIR"] = volume
	delete(env, "PROCESS_NAME")
	env["PID_FILE"] = pidFile
	env["METRICS_ADDR"] = "127.0.0.1:0"
	daemon := exec.Command(bin)
	daemon.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		daemon.Env = append(daemon.Env, k+"="+v)
	}
	startProcess(t, "pollreload", daemon)
	// Give pollreload its first scan, the baseline a change is measured against.
	time.Sleep(500 * time.Millisecond)

	updated := strings.Replace(config, "hello from nginx", "hello again from nginx", 1)
	writeKubeletVolume(t, volume, "..2026_01_02", map[string]string{"default.conf": updated})
	waitForBody(t, url, "hello again from nginx, reloaded by pollreload")

	// A reload, not a restart: the same master process serves the new text.
	if got, err := os.ReadFile(pidFile); err != nil || string(got) != string(masterPID) {
		t.Errorf("got nginx master PID %q (err %v); want %q, unchanged", got, err, masterPID)
	}
}

// writeKubeletVolume writes files into the timestamped directory name of a
// kubelet-style volume at root, then points ..data at it with an atomic
// rename, and links each file name at the root to ..data, as the kubelet's
// atomic writer does.
func writeKubeletVolume(t *testing.T, root, name string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, content := range files {
		writeFile(t, filepath.Join(root, name, file), content)
	}
	tmp := filepath.Join(root, "..data_tmp")
	if err := os.Symlink(name, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "..data")); err != nil {
		t.Fatal(err)
	}
	for file := range files {
		link := filepath.Join(root, file)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", file), link); err != nil {
			t.Fatal(err)
		}
	}
}

// writeFile writes content to path or fails the test.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess starts cmd with its output kept for the test log, and stops it
// (SIGTERM, then SIGKILL) when the test ends.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// waitForBody polls url until its body contains want, for up to 20 seconds.
func waitForBody(t *testing.T, url, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(body)
			if strings.Contains(last, want) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("got %q from %s; want a body containing %q within 20 s", last, url, want)
}
