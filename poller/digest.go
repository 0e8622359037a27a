package poller

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"

	"github.com/cespare/xxhash/v2"

	"github.com/pollreload/pollreload/hasher"
)

// This file names content in logs without giving it away. A content digest
// is an unkeyed xxhash: logged as is, it would let anyone who reads the logs
// brute-force a short Secret (a 6-digit PIN in a fraction of a second). Logs
// show instead HMAC-SHA256(key, digest), truncated to 8 bytes in hex, with a
// key drawn from crypto/rand when the process starts and never written
// anywhere. Equal fingerprints within one process's logs mean equal content;
// across restarts they differ, and without the key they cannot be checked
// against a guess.

// fingerprinter computes log fingerprints; it is owned by the loop goroutine.
type fingerprinter struct {
	mac hash.Hash
}

func newFingerprinter() *fingerprinter {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails on Linux (getrandom)
	return &fingerprinter{mac: hmac.New(sha256.New, key)}
}

// of returns the fingerprint of digest d: 16 hex digits.
func (f *fingerprinter) of(d uint64) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], d)
	f.mac.Reset()
	f.mac.Write(b[:])
	var sum [sha256.Size]byte
	return hex.EncodeToString(f.mac.Sum(sum[:0])[:8])
}

// combiner folds the snapshots of all roots into one digest, reusing its
// state so that a steady tick allocates nothing.
type combiner struct {
	d   *xxhash.Digest
	buf [8]byte
}

func (c *combiner) digest(snaps []*hasher.Snapshot) uint64 {
	if c.d == nil {
		c.d = xxhash.New()
	}
	c.d.Reset()
	for _, s := range snaps {
		_, _ = c.d.WriteString(s.Root)
		binary.LittleEndian.PutUint64(c.buf[:], s.Digest)
		_, _ = c.d.Write(c.buf[:])
	}
	return c.d.Sum64()
}
