package hasher

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// defaultRacyMargin is how close to the start of the hashing scan a file's
// mtime or ctime may be before its cached digest is distrusted. Coarse
// timestamps (FAT: 2 s, many NFS servers: 1 s, kernels without fine-grained
// timestamps: one jiffy) let a write land in the same tick as the stat that
// saw the old content; git calls this the racy-git problem.
const defaultRacyMargin = 2 * time.Second

// readBufferSize is the fixed buffer file content is streamed through.
const readBufferSize = 128 << 10

// signature is what must stay equal for a cached digest to be reused.
type signature struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns since the epoch
}

func signatureOf(st *unix.Stat_t) signature {
	return signature{
		dev:   st.Dev,
		ino:   st.Ino,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}
}

// entry is the cached state of one file.
type entry struct {
	path     string
	sig      signature
	file     File
	hashedAt int64  // ns; start of the scan that read the content
	gen      uint64 // last attempt that saw the file
	reusable bool   // false when the file changed while it was being read
}

// trusted reports whether e's digest may stand in for content with the given
// signature during scan s: the signature is unchanged, was not racy when
// hashed, and the digest is younger than Options.VerifyAfter.
func (s *scan) trusted(e *entry, sig signature) bool {
	if !e.reusable || e.sig != sig {
		return false
	}
	if v := s.h.verifyAfter; v > 0 && s.start-e.hashedAt >= int64(v) {
		return false
	}
	newest := max(sig.mtime, sig.ctime)
	return newest < e.hashedAt-int64(s.h.racyMargin)
}

// hashOpen hashes the open regular file fd whose signature is st, unless the
// cache already holds a trusted digest for it.
func (s *scan) hashOpen(fd int, rel string, st *unix.Stat_t) error {
	sig := signatureOf(st)
	e := s.rs.cache[rel]
	if e != nil && s.trusted(e, sig) {
		if err := s.addBytes(e.file.Size); err != nil {
			return err
		}
		s.keep(e)
		return nil
	}
	if max := s.h.opts.MaxFileSize; max > 0 && st.Size > max {
		s.fail(rel, false, &FileTooLargeError{Max: max, Size: st.Size})
		return nil
	}
	// Checked before reading, so a scan never reads far past the bound.
	if err := s.addBytes(st.Size); err != nil {
		return err
	}
	read := s.readAll
	if st.Size >= pipelineMin {
		read = s.readPipelined
	}
	size, digest, err := read(fd)
	if errors.Is(err, errFileTooLarge) {
		// stat said it fits, the content did not: a file growing while it
		// was read, or one that reports no size (procfs, sysfs).
		s.fail(rel, false, &FileTooLargeError{Max: s.h.opts.MaxFileSize, Size: st.Size, Grew: true})
		return nil
	}
	if err != nil {
		return err
	}
	s.total += size - st.Size // what was read, if it grew or shrank
	var after unix.Stat_t
	reusable := unix.Fstat(fd, &after) == nil && signatureOf(&after) == sig
	if e == nil {
		e = &entry{path: rel}
		s.rs.cache[rel] = e
	}
	e.sig = sig
	e.file = File{Size: size, Digest: digest}
	e.hashedAt = s.start
	e.reusable = reusable
	s.keep(e)
	return nil
}

// readBudget returns how many bytes the next read of a file of which size
// bytes were read may ask for, at most want: with MaxFileSize set, only
// enough to pass the limit by one byte, rounded up to a whole page because
// some kernel files (/proc/PID/pagemap) refuse reads of odd sizes. Zero means
// the file is already over the limit.
func readBudget(max, size int64, want int) int {
	if max <= 0 {
		return want
	}
	left := max + 1 - size
	if left <= 0 {
		return 0
	}
	const page = 4096
	return int(min(int64(want), (left+page-1)/page*page))
}

// readAll streams fd through the fixed buffer. It stops with errFileTooLarge
// as soon as the content passes MaxFileSize, whatever stat said: a file in
// procfs reports size 0, and /proc/PID/pagemap never ends.
func (s *scan) readAll(fd int) (int64, uint64, error) {
	d := s.rs.digest
	d.Reset()
	var size int64
	for {
		budget := readBudget(s.h.opts.MaxFileSize, size, len(s.rs.buf))
		if budget == 0 {
			return 0, 0, errFileTooLarge
		}
		n, err := unix.Read(fd, s.rs.buf[:budget])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if n <= 0 {
			break
		}
		d.Write(s.rs.buf[:n])
		size += int64(n)
		s.bytesRead += int64(n)
		// A multi-gigabyte file should not hold up shutdown.
		if size&(64<<20-1) < int64(n) && s.ctx.Err() != nil {
			return 0, 0, s.ctx.Err()
		}
	}
	return size, d.Sum64(), nil
}

// Files of pipelineMin bytes or more are read on a second goroutine while
// the first hashes, so that copying from the page cache (system time) and
// hashing (user time) use both cores: alone, either would tie xxhsum.
const (
	pipelineMin   = 8 << 20
	pipelineChunk = 1 << 20
	pipelineDepth = 3
)

// chunk is one read of readPipelined.
type chunk struct {
	buf []byte
	err error
}

// readPipelined hashes fd like readAll, with the reads one chunk ahead on
// another goroutine. Memory stays pipelineDepth chunks whatever the size.
func (s *scan) readPipelined(fd int) (int64, uint64, error) {
	if s.rs.chunks == nil {
		s.rs.chunks = make([][]byte, pipelineDepth)
		for i := range s.rs.chunks {
			s.rs.chunks[i] = make([]byte, pipelineChunk)
		}
	}
	free := make(chan []byte, pipelineDepth)
	for _, b := range s.rs.chunks {
		free <- b
	}
	full := make(chan chunk, pipelineDepth)
	stop := make(chan struct{})
	// The goroutine captures values only: capturing s would move every
	// scan to the heap, small ones too.
	maxSize := s.h.opts.MaxFileSize
	go func() {
		defer close(full)
		var read int64
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			budget := readBudget(maxSize, read, len(b))
			if budget == 0 {
				full <- chunk{err: errFileTooLarge}
				return
			}
			b = b[:budget]
			n, err := readFull(fd, b)
			read += int64(n)
			full <- chunk{buf: b[:n], err: err}
			if err != nil || n < len(b) {
				return
			}
		}
	}()
	// The reader must be gone before fd is closed by the caller.
	defer func() {
		close(stop)
		for range full {
		}
	}()

	d := s.rs.digest
	d.Reset()
	var size int64
	for c := range full {
		if c.err != nil {
			return 0, 0, c.err
		}
		d.Write(c.buf)
		size += int64(len(c.buf))
		s.bytesRead += int64(len(c.buf))
		if err := s.ctx.Err(); err != nil {
			return 0, 0, err
		}
		free <- c.buf[:cap(c.buf)]
	}
	if max := s.h.opts.MaxFileSize; max > 0 && size > max {
		return 0, 0, errFileTooLarge // ended within the last read's overshoot
	}
	return size, d.Sum64(), nil
}

// readFull reads into b until it is full or the file ends.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m <= 0 {
			break
		}
		n += m
	}
	return n, nil
}
