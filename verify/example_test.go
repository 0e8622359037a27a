package verify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pollreload/pollreload/signaler"
	"github.com/pollreload/pollreload/verify"
)

// stampVerifier is a Verifier of a made-up application that writes the
// time of its last successful reload to a file, or "refused".
type stampVerifier struct {
	file   string
	before string
}

// Before reads the stamp the delivery must change.
func (s *stampVerifier) Before(context.Context) {
	b, _ := os.ReadFile(s.file)
	s.before = string(b)
}

// After waits, bounded, for the stamp to change.
func (s *stampVerifier) After(ctx context.Context, d verify.Delivery) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(s.file)
		switch {
		case string(b) == "refused":
			return &signaler.RejectedError{Target: "app", Answer: "it said refused"}
		case string(b) != s.before:
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the stamp did not change: no verdict yet")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// fileApp "reloads" by writing what next says to the stamp file.
type fileApp struct{ stamp, next string }

func (a *fileApp) Reload(context.Context, time.Time) (signaler.Outcome, error) {
	err := os.WriteFile(a.stamp, []byte(a.next), 0o644)
	return signaler.Outcome{Signalled: []signaler.Target{{Name: "app"}}}, err
}

// A Verifier's Before runs right before the delivery and its After once the
// delivery reached the application; After's error is the verdict, and
// signaler.Reason names it as the reloads_total result label does. The last
// delivery changes nothing the verifier can see: no verdict, an error that
// the poll loop would retry.
func Example() {
	dir, _ := os.MkdirTemp("", "verify-example")
	defer os.RemoveAll(dir)
	stamp := dir + "/stamp"
	_ = os.WriteFile(stamp, []byte("1"), 0o644)

	app := &fileApp{stamp: stamp}
	v := verify.All(verify.Verifier(&stampVerifier{file: stamp}))
	for _, next := range []string{"2", "refused", "3", "3"} {
		app.next = next
		_, err := verify.Deliver(context.Background(), app, v, time.Now())
		fmt.Printf("%s: %s\n", next, signaler.Reason(err))
	}
	// Output:
	// 2: success
	// refused: rejected
	// 3: success
	// 3: error
}
