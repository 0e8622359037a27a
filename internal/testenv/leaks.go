package testenv

import (
	"fmt"
	"os"

	"go.uber.org/goleak"
)

// VerifyNoLeaks is for a TestMain, after its tests ran with exit code code:
// it fails the run (code 1) when goroutines other than the test binary's
// own are still running once the tests are done, a goroutine some code
// started and never joined. It waits a moment for goroutines that are
// ending (goleak.Find retries). A helper process (see StartTarget) is not
// checked.
func VerifyNoLeaks(code int) int {
	if code != 0 || os.Getenv(helperEnv) != "" {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests:\n%v\n", err)
		return 1
	}
	return code
}
