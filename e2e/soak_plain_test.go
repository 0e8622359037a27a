package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/pollreload/pollreload/internal/testenv"
)

// Plain-tree soak parameters: an update rewrites every file in place, one
// after another, never taking longer than half the settle time.
const (
	plainUpdates      = 120
	plainShortUpdates = 30
	plainSettle       = 500 * time.Millisecond
	plainFileGapMax   = 150 * time.Millisecond
)

var plainKeys = []string{"a.conf", "b.conf", "c.conf"}

// plainUpdate is one multi-file update as the writer made it.
type plainUpdate struct {
	ID         int
	Start, End int64 // first write began, last write ended (Unix ns)
	Awaited    bool  // followed by a wait for its delivery
}

// TestSoakPlainTreeUpdates rewrites three files of an ordinary directory in
// place, one by one with up to 150ms between them, 120 times (30 with
// -short), with SETTLE_TIME=500ms. Half-written updates are on disk for a
// while, and a poller that reloaded as soon as content differed would hand
// them to the application. It checks that
//   - every reload reads one whole version, the one on disk, while no
//     update is being written (pollreload only signals settled content);
//   - every update followed by a pause is delivered;
//   - the application sees no more reloads than pollreload delivered.
func TestSoakPlainTreeUpdates(t *testing.T) {
	t.Parallel()
	updates := plainUpdates
	if testing.Short() {
		updates = plainShortUpdates
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("plain soak: %d updates of %d files, seed %d", updates, len(plainKeys), seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	dir := t.TempDir()
	writeVersion := func(id int, order []string, between func()) {
		for i, k := range order {
			if err := os.WriteFile(filepath.Join(dir, k), []byte(fmt.Sprintf("state=%06d key=%s\n", id, k)), 0o644); err != nil {
				t.Fatal(err)
			}
			if i < len(order)-1 {
				between()
			}
		}
	}
	writeVersion(1, plainKeys, func() {})
	ups := []plainUpdate{{ID: 1}}

	tg := testenv.StartTarget(t, testenv.UniqueName("plain"), dir)
	pr := testenv.Start(t, map[string]string{
		"CONFIG_DIR":    dir,
		"PROCESS_NAME":  tg.Name,
		"POLL_INTERVAL": soakInterval.String(),
		"SETTLE_TIME":   plainSettle.String(),
	})

	began := time.Now()
	awaited := 0
	for id := 2; id <= updates+1; id++ {
		order := slices.Clone(plainKeys)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		u := plainUpdate{ID: id, Start: time.Now().UnixNano()}
		writeVersion(id, order, func() { time.Sleep(time.Duration(rng.Int64N(int64(plainFileGapMax)))) })
		u.End = time.Now().UnixNano()
		u.Awaited = id == updates+1 || rng.IntN(2) == 0
		ups = append(ups, u)
		if !u.Awaited {
			// Shorter than the settle time: the next update may supersede
			// this one before it is confirmed, which is fine.
			time.Sleep(time.Duration(rng.Int64N(int64(plainSettle * 3 / 5))))
			continue
		}
		awaited++
		want := map[string]string{}
		for _, k := range plainKeys {
			want[k] = fmt.Sprintf("state=%06d key=%s\n", id, k)
		}
		waitTargetFiles(t, tg, want)
		time.Sleep(time.Duration(rng.Int64N(int64(plainSettle / 2))))
	}
	elapsed := time.Since(began)

	// A reload may only follow a state that stayed unchanged for the settle
	// time. Every update is written faster than that, and a pause shorter
	// than that is never confirmed; after a longer one the writer waits for
	// the application's read. So a correct pollreload never signals while an
	// update is being written, and every read must find one whole version,
	// the one on disk, with no update under way.
	recs := tg.Records(t)
	mixed, during, stale := 0, 0, 0
	for _, r := range recs[1:] {
		u := sort.Search(len(ups), func(i int) bool { return ups[i].Start > r.End }) // first update after the read
		id, keys, ok := stateOf(r)
		complete := ok && slices.Equal(keys, plainKeys)
		switch {
		case !complete:
			mixed++
		case u > 0 && ups[u-1].End >= r.Start:
			during++
		case id != ups[u-1].ID:
			stale++
		default:
			continue
		}
		if mixed+during+stale <= 5 {
			t.Errorf("reload %d read %v (errors %v) at %s; update %d (version %d) ran %s-%s; want one whole version, read with no update under way",
				r.Seq, r.Files, r.Errors, time.Unix(0, r.Start).Format("15:04:05.000"), u-1, ups[u-1].ID,
				time.Unix(0, ups[u-1].Start).Format("15:04:05.000"), time.Unix(0, ups[u-1].End).Format("15:04:05.000"))
		}
	}
	reloads := len(recs) - 1
	success := verifiedAtLeast(pr, float64(reloads))
	// A delivery superseded while it was being verified counts no success,
	// so under churn the signals sent bound the application's reloads:
	// pollreload logs each one as "reload delivered".
	sent := max(success, float64(deliveredReloads(pr)))
	if reloads > int(sent) {
		t.Errorf("the application saw %d reloads; pollreload sent %v (reloads_total{result=\"success\"} = %v); want no more than that", reloads, sent, success)
	}
	t.Logf("plain soak: %d updates in %v (%d followed by a pause and delivered, %d superseded or coalesced at will)",
		updates, elapsed.Round(time.Second), awaited, updates-awaited)
	t.Logf("plain soak: the application reloaded %d times (pollreload: %v changes, %v successful reloads); mixed reads: %d, whole reads during an update: %d, stale reads: %d",
		reloads, pr.Metric(t, "pollreload_changes_total", nil), success, mixed, during, stale)
}
