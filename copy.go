package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// This file is `pollreload copy DEST`: the init container of wrapper mode in
// a pod. It copies pollreload's own static binary into a volume the
// application's container mounts (an emptyDir), as Tekton's entrypoint and
// Argo's executor put a binary into someone else's image, and then runs the
// copy with --version, so that a copy that cannot run there (a volume
// mounted noexec, a truncated write, a binary the kernel refuses) fails the
// init container loudly instead of the application starting without reloads.

// copyVerifyTimeout bounds the copy's --version run.
const copyVerifyTimeout = 30 * time.Second

// runCopy copies the running executable to DEST (or DEST/pollreload when
// DEST is a directory) and checks that the copy runs and reports this
// binary's version.
func runCopy(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return usageErr("copy takes one argument, the destination file or directory (pollreload copy /pollreload-bin)")
	}
	dest := args[0]
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		dest = filepath.Join(dest, "pollreload")
	}
	n, err := copySelf(dest)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	want := versionLine()
	got, err := runCopied(ctx, dest)
	if err != nil {
		return fmt.Errorf("copy: wrote %s (%d bytes), but it does not run here: %w", dest, n, err)
	}
	if got != want {
		return fmt.Errorf("copy: %s answers %q to --version, want %q: the copy is not this binary", dest, got, want)
	}
	fmt.Fprintf(stdout, "copied pollreload to %s (%d bytes); the copy runs: %s\n", dest, n, got)
	return nil
}

// versionLine is what --version prints, without the newline.
func versionLine() string {
	return fmt.Sprintf("pollreload %s (commit %s, %s, %s %s/%s)",
		version, commit, commitDate, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// copySelf writes the running executable to dest, readable and executable
// by every UID (the application's container may run as any), through a
// temporary file in dest's directory renamed over dest, so that a
// half-written copy is never found under dest's name.
func copySelf(dest string) (int64, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("open own executable: %w", err)
	}
	defer src.Close()
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, ".pollreload-copy-*")
	if err != nil {
		return 0, fmt.Errorf("create a file in %s: %w%s", dir, err, copyHint(err))
	}
	n, err := io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(0o555)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return 0, fmt.Errorf("write %s: %w%s", dest, err, copyHint(err))
	}
	return n, nil
}

// copyHint says what to change for the errors a pod spec causes.
func copyHint(err error) string {
	switch {
	case errors.Is(err, syscall.EROFS):
		return " (the volume is read-only here: mount the emptyDir without readOnly in the init container)"
	case errors.Is(err, syscall.ENOSPC):
		return " (the volume is full: raise the emptyDir's sizeLimit)"
	case errors.Is(err, os.ErrPermission):
		return " (this UID may not write there: use an emptyDir, which every UID may write)"
	case errors.Is(err, os.ErrNotExist):
		return " (no such directory: mount the emptyDir at the destination's directory)"
	}
	return ""
}

// runCopied runs `path --version` and returns its first line.
func runCopied(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, copyVerifyTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Env = []string{}
	if err := cmd.Run(); err != nil {
		switch {
		case errors.Is(err, syscall.ENOEXEC):
			return "", fmt.Errorf("%w (a binary for another architecture than this node's?)", err)
		case errors.Is(err, os.ErrPermission):
			return "", fmt.Errorf("%w (is the volume mounted noexec?)", err)
		case out.Len() > 0:
			return "", fmt.Errorf("%w: %s", err, firstLine(out.String()))
		}
		return "", err
	}
	return firstLine(out.String()), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
