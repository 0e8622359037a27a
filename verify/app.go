package verify

import (
	"context"
	"errors"
	"sync"
)

// This file holds AppVerifier, the verification a profile gives a process
// target: before each delivery it reads the target's command line, finds
// the application's own evidence from it (a status page, a socket, a
// connection) and reads it; after the delivery it waits for the verdict,
// or says the reload is unverified when there is no evidence to read.

// AppOptions configures an AppVerifier.
type AppOptions struct {
	Profile Profile
	// Cmdline returns the command line of the process the delivery will
	// signal (the one the policy selects).
	Cmdline func() ([]string, error)
	// Source holds the user's overrides and the timeout.
	Source SourceOptions
}

// AppVerifier verifies a reload by the evidence its profile names.
type AppVerifier struct {
	opts AppOptions

	mu     sync.Mutex
	key    string   // the command line the source was built for
	source Verifier // nil: none found
	why    error    // why none was found
}

// NewAppVerifier returns an AppVerifier.
func NewAppVerifier(opts AppOptions) *AppVerifier { return &AppVerifier{opts: opts} }

// Describe returns the source the verifier would read for the process
// running args and what it reads, or why it cannot read anything (a
// *NoEvidenceError), for `check` and the start log.
func (a *AppVerifier) Describe(args []string) (Verifier, string, error) {
	return a.opts.Profile.Source(args, a.opts.Source)
}

// Before finds the source for the target's current command line and lets
// it read its baseline.
func (a *AppVerifier) Before(ctx context.Context) {
	args, err := a.opts.Cmdline()
	a.mu.Lock()
	if err != nil {
		a.source, a.why, a.key = nil, err, ""
	} else if key := joinArgs(args); key != a.key || a.source == nil {
		a.source, _, a.why = a.opts.Profile.Source(args, a.opts.Source)
		a.key = key
	}
	src := a.source
	a.mu.Unlock()
	if src != nil {
		src.Before(ctx)
	}
}

// After returns the source's verdict, or an *UnverifiedError when there is
// no source.
func (a *AppVerifier) After(ctx context.Context, d Delivery) error {
	a.mu.Lock()
	src, why := a.source, a.why
	a.mu.Unlock()
	if src != nil {
		return src.After(ctx, d)
	}
	reason := "no evidence could be read"
	var ne *NoEvidenceError
	switch {
	case errors.As(why, &ne):
		reason = ne.Why
	case why != nil:
		reason = why.Error()
	}
	return &UnverifiedError{App: a.opts.Profile.Name, Reason: reason, Setting: a.opts.Profile.Setting}
}

func joinArgs(args []string) string {
	n := 0
	for _, a := range args {
		n += len(a) + 1
	}
	b := make([]byte, 0, n)
	for _, a := range args {
		b = append(b, a...)
		b = append(b, 0)
	}
	return string(b)
}
