// Command pollreload polls configuration directories and reloads the
// application when their content really changes.
package main

import (
	"fmt"
	"os"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	fmt.Fprintln(os.Stdout, "pollreload", version, commit)
}
