// Command naive is the poller bench/fleet compares pollreload with: the
// method of prometheus-config-reloader (thanos pkg/reloader) and of many
// shell loops, which reads every file on every tick. Each tick walks every
// directory with filepath.Walk (an lstat per entry), stats each path again
// following symlinks, and opens, reads to the end and closes every one that
// is not a directory, hashing what it read. Its ticker starts when the
// process does, with no random phase, as theirs does.
//
//	naive -interval 1s DIR...
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	interval := flag.Duration("interval", time.Second, "time between ticks")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: naive -interval 1s DIR...")
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	t := time.NewTicker(*interval)
	defer t.Stop()
	var last []byte
	for {
		sum, err := hashDirs(flag.Args())
		if err != nil {
			fmt.Fprintln(os.Stderr, "naive:", err)
		} else if string(sum) != string(last) {
			last = sum
			fmt.Fprintf(os.Stderr, "naive: content %x\n", sum[:8])
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// hashDirs hashes the name and content of every non-directory under dirs.
func hashDirs(dirs []string) ([]byte, error) {
	h := sha256.New()
	for _, dir := range dirs {
		err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			// Walk's FileInfo comes from lstat; follow a symlink before
			// deciding whether it is a directory.
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			if fi.IsDir() {
				return nil
			}
			return hashFile(h, path)
		})
		if err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(w, "\xff%s\xff", path)
	_, err = io.Copy(w, f)
	return err
}
