package main

// Set at build time with -ldflags "-X main.version=... -X main.commit=...
// -X main.commitDate=..." (release/build.sh passes the tag, the full commit
// hash and the commit time in UTC, RFC 3339).
var (
	version    = "dev"
	commit     = "unknown"
	commitDate = "unknown"
)
