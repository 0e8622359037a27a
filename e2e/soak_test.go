package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// Soak parameters. The poll interval is the smallest pollreload accepts, so
// that many updates fit in a CI-sized run.
const (
	soakUpdates      = 2000
	soakShortUpdates = 300
	soakInterval     = 100 * time.Millisecond
	// soakSeedEnv reproduces a run: the seed is printed at the start.
	soakSeedEnv = "E2E_SOAK_SEED"
)

// soakKeys are the keys a state draws from. The nested ones share the
// top-level link "flags", as a ConfigMap with items paths would.
var soakKeys = []string{"app.conf", "db.conf", "flags/a.txt", "flags/b.txt", "tls.crt"}

// soakState is one version of the volume. Every file of a state carries
// the state's ID, so a read that mixes versions shows it, and every file
// has the same size in every state, so only content tells states apart.
type soakState struct {
	ID   int
	Keys []string // sorted
}

func (s soakState) files() map[string]string {
	m := make(map[string]string, len(s.Keys))
	for _, k := range s.Keys {
		m[k] = fmt.Sprintf("state=%06d key=%s\n", s.ID, k)
	}
	return m
}

// Gaps after a write. A burst or short gap may be too short for pollreload
// to see the state (it is then coalesced, which is fine). A medium gap
// lasts four to six poll intervals, and after a new state at least until
// pollreload has scanned three times and the application has read it
// (bounded by deliveryTimeout). At a checkpoint (always a new state) the test waits
// for the delivery, then probes that identical-content swaps cause no
// reload.
//
// Why only new states: no poller sees content that comes and goes between
// two scans. If pollreload scans A and signals, and the writer puts B and
// then A back before the next scan, an application that read during B runs
// with B while A is on disk and A is what pollreload delivered. (pollreload
// narrows this by reloading again when the volume was swapped while a reload
// was being delivered; an application slow to read can still land in it.) A
// new state was never scanned before, so pollreload must notice it and
// signal after it was written; with no write after it, the application
// then reads it.
const (
	gapBurst      = "burst"      // 0-5ms
	gapShort      = "short"      // 5-60ms
	gapMedium     = "medium"     // 4-6 poll intervals
	gapCheckpoint = "checkpoint" // until delivered and settled, then probes
	gapProbe      = "probe"      // identical swap inside a checkpoint
)

// soakWrite is one kubelet-style update as the writer made it.
type soakWrite struct {
	Kind       string // "initial", "new", "identical", "revert", "probe"
	State      soakState
	Start, End int64 // Unix nanoseconds around KubeletWriter.Write
	Gap        string
}

// TestSoakKubeletUpdates makes 2,000 kubelet-style updates at random
// intervals (300 with -short) to a volume that a real signal-catching
// application reads on every SIGHUP: new states that add or remove keys,
// returns to the previous state (A→B→A), and swaps to identical content.
// It checks that
//   - the application never reloads into a mixed state: every reload that
//     did not overlap a write read exactly one state, complete, and the one
//     on disk at that moment;
//   - every new state left alone (a medium gap or a checkpoint) reaches the
//     application before the next write;
//   - identical-content swaps never cause a reload (probed at settled
//     checkpoints), and reloads never outnumber content changes;
//   - pollreload's success counter matches the reloads the application saw.
func TestSoakKubeletUpdates(t *testing.T) {
	t.Parallel()
	updates := soakUpdates
	if testing.Short() {
		updates = soakShortUpdates
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(soakSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", soakSeedEnv, s, err)
		}
	}
	t.Logf("soak: %d updates, seed %d (%s=%d reproduces the sequence)", updates, seed, soakSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	vol := t.TempDir()
	kw := testenv.NewKubeletWriter(vol)
	var writes []soakWrite
	write := func(kind string, s soakState, gap string) {
		start := time.Now().UnixNano()
		if _, err := kw.Write(s.files()); err != nil {
			t.Fatalf("write %d: %v", len(writes), err)
		}
		writes = append(writes, soakWrite{Kind: kind, State: s, Start: start, End: time.Now().UnixNano(), Gap: gap})
	}
	cur := soakState{ID: 1, Keys: []string{"app.conf", "db.conf"}}
	write("initial", cur, gapCheckpoint)

	tg := testenv.StartTarget(t, testenv.UniqueName("soak"), vol)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    vol,
		"PROCESS_NAME":  tg.Name,
		"POLL_INTERVAL": soakInterval.String(),
	})

	began := time.Now()
	var prev *soakState
	nextID := 2
	c := soakCounts{kinds: map[string]int{}, gaps: map[string]int{}}
	for i := 1; i <= updates; i++ {
		gap := gapBurst
		switch r := rng.Float64(); {
		case i == updates || r < 0.03:
			gap = gapCheckpoint
		case r < 0.10:
			gap = gapMedium
		case r < 0.50:
			gap = gapShort
		}
		kind, s := "new", cur
		switch r := rng.Float64(); {
		case gap == gapCheckpoint:
			// A checkpoint state is always new: see soakCheckpoint.
		case r < 0.20:
			kind = "identical"
		case r < 0.35 && prev != nil:
			kind, s = "revert", *prev
		}
		if kind == "new" {
			s = soakState{ID: nextID, Keys: slices.Clone(cur.Keys)}
			nextID++
			switch r := rng.Float64(); {
			case r < 0.25 && len(s.Keys) < len(soakKeys):
				s.Keys = addKey(s.Keys, rng)
				c.keyAdds++
			case r < 0.45 && len(s.Keys) > 1:
				s.Keys = removeKey(s.Keys, rng)
				c.keyRemoves++
			}
		}
		if kind != "identical" {
			old := cur
			prev = &old
		}
		write(kind, s, gap)
		cur = s
		scansAtWrite := pr.Metric(t, "pollreload_scans_total", nil)
		switch gap {
		case gapBurst:
			time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
		case gapShort:
			time.Sleep(5*time.Millisecond + time.Duration(rng.IntN(55))*time.Millisecond)
		case gapMedium:
			until := time.Now().Add(4*soakInterval + time.Duration(rng.Int64N(int64(2*soakInterval))))
			if kind == "new" {
				soakAwaitDelivery(t, pr, tg, writes, scansAtWrite, &c)
			}
			time.Sleep(time.Until(until))
		case gapCheckpoint:
			soakCheckpoint(t, pr, tg, cur, rng, write, &writes, scansAtWrite, &c)
		}
	}
	elapsed := time.Since(began)

	recs := tg.Records(t)
	soakCheckReads(t, recs, writes, &c)
	soakCheckMediumGaps(t, recs, writes, &c)

	for _, w := range writes[1:] {
		c.kinds[w.Kind]++
		c.gaps[w.Gap]++
	}
	reloads := len(recs) - 1
	changes := 0
	for i := 1; i < len(writes); i++ {
		if !slices.Equal(writes[i].State.Keys, writes[i-1].State.Keys) || writes[i].State.ID != writes[i-1].State.ID {
			changes++
		}
	}
	// Each delivery needs a write after the scan behind the one before it
	// (a change, or a swap while it was delivered), so there can never be
	// more reloads than writes. Identical swaps are judged by the probes.
	if reloads > len(writes)-1 {
		t.Errorf("the application reloaded %d times for %d writes; want at most one reload per write", reloads, len(writes)-1)
	}
	success := verifiedAtLeast(pr, float64(reloads))
	// A delivery superseded while it was being verified counts no success,
	// so under churn the signals sent bound the application's reloads:
	// pollreload logs each one as "reload delivered".
	sent := max(success, float64(deliveredReloads(pr)))
	// Signals of one kind do not queue: two SIGHUPs that arrive before the
	// application handles the first are one reload to it. So the
	// application may see fewer reloads than pollreload delivered, never
	// more (more would mean someone else signals it).
	if reloads > int(sent) {
		t.Errorf("the application saw %d reloads; pollreload sent %v (reloads_total{result=\"success\"} = %v); want no more than that", reloads, sent, success)
	}
	if code, body, err := httpGet(context.Background(), "http://"+pr.MetricsAddr+"/healthz"); err != nil || code != 200 {
		t.Errorf("after the soak /healthz = %d %q (err %v); want 200", code, body, err)
	}
	delivered := map[int]bool{}
	for _, r := range recs[1:] {
		if id, _, ok := stateOf(r); ok {
			delivered[id] = true
		}
	}

	t.Logf("soak: %d updates in %v: %d content changes (%d new states, %d of them adding a key, %d removing one; %d returns A->B->A), %d identical-content swaps (%d random, %d probes)",
		len(writes)-1, elapsed.Round(time.Second), changes, c.kinds["new"], c.keyAdds, c.keyRemoves, c.kinds["revert"],
		c.kinds["identical"]+c.kinds["probe"], c.kinds["identical"], c.kinds["probe"])
	t.Logf("soak: gaps: %d burst (0-5ms), %d short (5-60ms), %d medium (400-600ms, longer until a new state is read), %d checkpoints",
		c.gaps[gapBurst], c.gaps[gapShort], c.gaps[gapMedium], c.gaps[gapCheckpoint])
	changesSeen := pr.Metric(t, "pollreload_changes_total", nil)
	t.Logf("soak: the application reloaded %d times into %d distinct states; pollreload counted %v changes and %v successful reloads (%v repeated because the volume was swapped during a delivery; %v merged by signal coalescing)",
		reloads, len(delivered), changesSeen, success, success-changesSeen, success-float64(reloads))
	t.Logf("soak: delivered before the next write: %d/%d new states followed by a medium gap (%d undecidable; %d medium gaps after a revert or identical swap not judged), %d/%d checkpoints; extra reloads from %d identical-swap probes: %d",
		c.mediumOK, c.medium, c.mediumUndecided, c.mediumSeen, c.checkpoints, c.checkpoints, c.kinds["probe"], c.probeReloads)
	t.Logf("soak: reads overlapping a write: %d (%d torn, as any reader racing kubelet can be); mixed or stale reads outside writes: %d",
		c.overlapping, c.torn, c.violations)
	t.Logf("soak: delivery latency (write -> application read) at medium gaps and checkpoints: %s", latencySummary(c.latencies))
}

// soakCounts collects what the soak prints.
type soakCounts struct {
	kinds, gaps                                   map[string]int
	keyAdds, keyRemoves                           int
	checkpoints, probeReloads                     int
	medium, mediumOK, mediumUndecided, mediumSeen int
	overlapping, torn, violations                 int
	latencies                                     []time.Duration
}

// soakAwaitDelivery waits until pollreload has finished three scans since
// the last write (so one began after it, and its reload was sent) and the
// application has read the written state. Counting scans instead of time
// keeps this correct when pollreload stretches its interval after a slow
// scan, as it must on a loaded machine.
//
// An application that read inside kubelet's window between the `..data` swap
// and the link fix-up of this very write, with pollreload sending nothing
// more, fails the test (see TestKubeletSlowLinkFixup).
func soakAwaitDelivery(t *testing.T, pr *testenv.Pollreload, tg *testenv.Target, writes []soakWrite, scansAtWrite float64, c *soakCounts) {
	t.Helper()
	i := len(writes) - 1
	w := writes[i]
	stuck := false
	err := testenv.Poll(deliveryTimeout, func() error {
		scans := pr.Metric(t, "pollreload_scans_total", nil)
		if scans < scansAtWrite+3 {
			return fmt.Errorf("pollreload_scans_total = %v; want >= %v", scans, scansAtWrite+3)
		}
		last := tg.Last(t)
		// The state is new, so reading it proves the read came after the
		// swap, even if the writer was still removing the old directory.
		id, keys, ok := stateOf(last)
		if ok && id == w.State.ID && slices.Equal(keys, w.State.Keys) {
			return nil
		}
		inWindow := last.Start >= w.Start && last.Start <= w.End
		if inWindow && scans >= scansAtWrite+6 && pr.Metric(t, "pollreload_reload_pending", nil) == 0 {
			stuck = true
			return nil
		}
		return fmt.Errorf("new state %d %v (write %d) not delivered: the application's latest read is record %d %v (errors %v)",
			w.State.ID, w.State.Keys, i, last.Seq, last.Files, last.Errors)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, soakTrace(writes, tg.Records(t), 12))
	}
	if stuck {
		last := tg.Last(t)
		msg := fmt.Sprintf("write %d (state %d %v): the application read during kubelet's swap-to-links window and runs with %v (errors %v); pollreload delivered and sends nothing more",
			i, w.State.ID, w.State.Keys, last.Files, last.Errors)
		t.Fatalf("%s\n%s", msg, soakTrace(writes, tg.Records(t), 12))
	}
}

// soakCheckpoint waits until the application runs with cur and pollreload
// has settled (three more scans, nothing pending), then swaps to identical
// content one to three times and fails the test if that causes a reload.
func soakCheckpoint(t *testing.T, pr *testenv.Pollreload, tg *testenv.Target, cur soakState, rng *rand.Rand, write func(string, soakState, string), writes *[]soakWrite, scansAtWrite float64, c *soakCounts) {
	t.Helper()
	c.checkpoints++
	soakAwaitDelivery(t, pr, tg, *writes, scansAtWrite, c)
	waitScans(t, pr, 3)
	testenv.WaitFor(t, deliveryTimeout, func() error {
		if p := pr.Metric(t, "pollreload_reload_pending", nil); p != 0 {
			return fmt.Errorf("pollreload_reload_pending = %v; want 0", p)
		}
		return nil
	})
	before := len(tg.Reloads(t))
	for n := 1 + rng.IntN(3); n > 0; n-- {
		write("probe", cur, gapProbe)
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
	}
	waitScans(t, pr, 3)
	if extra := len(tg.Reloads(t)) - before; extra != 0 {
		c.probeReloads += extra
		t.Errorf("checkpoint %d: identical-content swaps of state %d caused %d reloads; want 0", c.checkpoints, cur.ID, extra)
	}
}

// soakCheckReads checks every reload record. One that overlaps no write
// must hold exactly the state on disk during the read; one that overlaps a
// write is only counted, since any application reading during a kubelet
// swap can see dangling or missing links.
func soakCheckReads(t *testing.T, recs []testenv.TargetRecord, writes []soakWrite, c *soakCounts) {
	t.Helper()
	keysOf := map[int][]string{}
	for _, w := range writes {
		keysOf[w.State.ID] = w.State.Keys
	}
	for _, r := range recs[1:] {
		w := sort.Search(len(writes), func(i int) bool { return writes[i].Start > r.End }) // first write after the read
		overlaps := w > 0 && writes[w-1].End >= r.Start
		id, keys, ok := stateOf(r)
		if overlaps {
			c.overlapping++
			if !ok || !slices.Equal(keys, keysOf[id]) {
				c.torn++
			}
			continue
		}
		onDisk := writes[w-1].State
		if !ok || id != onDisk.ID || !slices.Equal(keys, onDisk.Keys) {
			c.violations++
			if c.violations <= 5 {
				t.Errorf("reload %d read %v (errors %v, ..data %s -> %s) while only state %d %v was on disk; want exactly that state",
					r.Seq, r.Files, r.Errors, r.DataBefore, r.DataAfter, onDisk.ID, onDisk.Keys)
			}
		}
	}
	if c.violations > 5 {
		t.Errorf("%d mixed or stale reloads in all; want none", c.violations)
	}
}

// soakCheckMediumGaps checks that the state written before each medium gap
// (and each checkpoint) is what the application ran with by the next write,
// and measures how long the delivery took.
func soakCheckMediumGaps(t *testing.T, recs []testenv.TargetRecord, writes []soakWrite, c *soakCounts) {
	t.Helper()
	for i := 1; i+1 < len(writes); i++ {
		w, next := writes[i], writes[i+1]
		if w.Gap != gapMedium && w.Gap != gapCheckpoint {
			continue
		}
		// The latest read begun before the next write.
		j := sort.Search(len(recs), func(k int) bool { return recs[k].Start >= next.Start }) - 1
		last := recs[j]
		if d := firstReadOf(recs, w); d > 0 {
			c.latencies = append(c.latencies, d)
		}
		if w.Gap != gapMedium {
			continue
		}
		if w.Kind != "new" {
			c.mediumSeen++ // see the comment on the gap kinds
			continue
		}
		c.medium++
		if last.End >= next.Start {
			c.mediumUndecided++ // that read raced the next write
			continue
		}
		if id, keys, ok := stateOf(last); ok && id == w.State.ID && slices.Equal(keys, w.State.Keys) {
			c.mediumOK++
			continue
		}
		t.Errorf("write %d (state %d %v, %s) stayed %v on disk, but before write %d the application ran with record %d %v; want that state\n%s",
			i, w.State.ID, w.State.Keys, w.Kind, time.Duration(next.Start-w.End).Round(time.Millisecond), i+1, last.Seq, last.Files,
			soakTrace(writes[:i+2], recs[:j+1], 8))
	}
}

// firstReadOf returns how long after w the application first read w's
// state, or 0 if it already ran with it or never read it.
func firstReadOf(recs []testenv.TargetRecord, w soakWrite) time.Duration {
	j := sort.Search(len(recs), func(k int) bool { return recs[k].Start > w.End })
	if j > 0 {
		if id, _, ok := stateOf(recs[j-1]); ok && id == w.State.ID {
			return 0
		}
	}
	for ; j < len(recs); j++ {
		if id, _, ok := stateOf(recs[j]); ok && id == w.State.ID {
			return time.Duration(recs[j].Start - w.End)
		}
	}
	return 0
}

// stateOf parses what a read saw back into a state. ok is false if the read
// had errors, saw `..data` move, or found files of different states.
func stateOf(r testenv.TargetRecord) (id int, keys []string, ok bool) {
	if len(r.Errors) > 0 || r.DataBefore != r.DataAfter || len(r.Files) == 0 {
		return 0, nil, false
	}
	id = -1
	for k, content := range r.Files {
		var fid int
		var fkey string
		if _, err := fmt.Sscanf(content, "state=%d key=%s\n", &fid, &fkey); err != nil || fkey != k {
			return 0, nil, false
		}
		if id != -1 && fid != id {
			return 0, nil, false
		}
		id = fid
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return id, keys, true
}

func addKey(keys []string, rng *rand.Rand) []string {
	var missing []string
	for _, k := range soakKeys {
		if !slices.Contains(keys, k) {
			missing = append(missing, k)
		}
	}
	keys = append(keys, missing[rng.IntN(len(missing))])
	sort.Strings(keys)
	return keys
}

func removeKey(keys []string, rng *rand.Rand) []string {
	i := rng.IntN(len(keys))
	return append(slices.Clone(keys[:i]), keys[i+1:]...)
}

func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d p50=%v p90=%v max=%v", len(ds), q(0.5), q(0.9), ds[len(ds)-1].Round(time.Millisecond))
}

// soakTrace interleaves the last n writes and reads by time, to explain a
// failed check.
func soakTrace(writes []soakWrite, recs []testenv.TargetRecord, n int) string {
	type event struct {
		at   int64
		line string
	}
	var evs []event
	for i := max(0, len(writes)-n); i < len(writes); i++ {
		w := writes[i]
		evs = append(evs, event{w.Start, fmt.Sprintf("write %d: %s state %d %v (%s gap), took %v", i, w.Kind, w.State.ID, w.State.Keys, w.Gap, time.Duration(w.End-w.Start))})
	}
	for i := max(0, len(recs)-n); i < len(recs); i++ {
		r := recs[i]
		id, keys, ok := stateOf(r)
		evs = append(evs, event{r.Start, fmt.Sprintf("read %d (%s): state %d %v consistent=%v ..data %s", r.Seq, r.Event, id, keys, ok, r.DataAfter)})
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s  %s\n", time.Unix(0, e.at).Format("15:04:05.000000"), e.line)
	}
	return b.String()
}
