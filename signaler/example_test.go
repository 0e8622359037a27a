package signaler_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pollreload/pollreload/signaler"
)

// A reload for a process that is not running stays pending; Reason gives the
// metric label and the error says how to fix the deployment.
func ExampleNewProcess() {
	sig, err := signaler.ParseSignal("hup")
	if err != nil {
		panic(err)
	}
	p, err := signaler.NewProcess(signaler.ProcessOptions{
		Names:  []string{"no-such-app"},
		Signal: sig,
		Policy: signaler.PolicyRoots,
	})
	if err != nil {
		panic(err)
	}
	_, err = p.Reload(context.Background(), time.Now())
	fmt.Println(signaler.Reason(err))
	fmt.Println(err)
	// Output:
	// no_target
	// no matching process: no process in /proc is named no-such-app (by comm, argv[0] or executable)
}

func ExampleParseSignal() {
	for _, s := range []string{"SIGHUP", "usr1", "15", "SIGKILL"} {
		sig, err := signaler.ParseSignal(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s = %d\n", s, int(sig))
	}
	// Output:
	// SIGHUP = 1
	// usr1 = 10
	// 15 = 15
	// invalid signal "SIGKILL": SIGKILL cannot be caught, so it cannot ask an application to reload; use a signal the application handles, such as SIGHUP
}

// Metric labels name a target by what the configuration says, without any
// credential.
func ExampleTargetLabel() {
	fmt.Println(signaler.TargetLabel("nginx"))
	fmt.Println(signaler.TargetLabel("https://reloader:s3cret@prometheus:9090/-/reload?token=abc"))
	// Output:
	// nginx
	// prometheus:9090/-/reload
}

func ExampleParseHeaders() {
	h, err := signaler.ParseHeaders("X-Scope-OrgID: team-a, X-Env: prod")
	fmt.Println(h.Get("X-Scope-OrgID"), h.Get("X-Env"), err)
	_, err = signaler.ParseHeaders("Authorization: Bearer abc")
	fmt.Println(err)
	// Output:
	// team-a prod <nil>
	// header Authorization is set by pollreload itself
}
