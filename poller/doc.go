// Package poller is pollreload's poll loop: it scans the watched roots on a
// timer, decides when their content really changed, and has the change
// delivered to every target, retrying until each has it.
//
// Each part is its own file, so the question "where is X decided?" is
// answered by a file name:
//
//   - tracker.go decides whether content changed: the baseline, settling of
//     trees that may be half way through an update (a kubelet volume whose
//     links are all there is atomic and never settled), the confirmed change,
//     A→B→A reverts, and the re-check that re-delivers after a volume was
//     swapped while its reload was being delivered.
//   - content.go is what the tracker compares: the content of all roots at
//     one scan, and the change the targets must be told about.
//   - target.go is each target's delivery state machine: pending, who of its
//     processes were told already, retry and backoff, the verification step
//     (verify.Verifier), and rejected content that waits for the next change.
//   - schedule.go decides when the next scan runs: the interval, stretched
//     while scans are slow, error backoff, jitter and a random first phase.
//   - health.go answers /healthz and /readyz from scans only; a delivery in
//     flight never makes pollreload unhealthy.
//   - digest.go names content in logs by a keyed MAC, never by its digest.
//   - options.go is what a caller passes: roots, targets (a Reloader and an
//     optional verify.Verifier each), intervals.
//   - loop.go wires them: one goroutine owns the state and runs the ticks.
//   - scan.go is one scan of the roots and what the loop records of it.
//   - attempt.go runs every delivery or verification on a goroutine of its
//     own and sends its result back to the loop.
//   - precheck.go is the check before the delivery, run once per content
//     for the targets that share it.
//   - report.go is what the loop counts and logs about decisions and
//     attempts.
//
// The tracker and the schedule never read a clock: they take the times of
// the events they are given and return decisions, and are tested in
// simulated time.
//
//	l, err := poller.New(poller.Options{Roots: roots, Interval: 2 * time.Second, ...})
//	err = l.Run(ctx) // returns when ctx ends
package poller
