package signaler

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	const tail = " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100 0"
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr string
	}{
		{name: "plain", in: "42 (nginx) S 1 42 42" + tail,
			want: procStat{Comm: "nginx", State: 'S', PPID: 1, Flags: 4194560, StartTicks: 98765}},
		{name: "name with spaces and parens", in: "42 (a) b (c) S 7 42 42" + tail,
			want: procStat{Comm: "a) b (c", State: 'S', PPID: 7, Flags: 4194560, StartTicks: 98765}},
		{name: "name that looks like fields", in: "42 () Z 9 9 9 0 -1 1 2 3) R 3 42 42" + tail,
			want: procStat{Comm: ") Z 9 9 9 0 -1 1 2 3", State: 'R', PPID: 3, Flags: 4194560, StartTicks: 98765}},
		{name: "empty name", in: "42 () S 1 42 42" + tail,
			want: procStat{State: 'S', PPID: 1, Flags: 4194560, StartTicks: 98765}},
		{name: "kernel thread", in: "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 1 0 0 0 20 0 1 0 25 0 0",
			want: procStat{Comm: "kthreadd", State: 'S', PPID: 0, Flags: 2129984, StartTicks: 25}},
		{name: "truncated after name", in: "42 (nginx) S 1", wantErr: "2 fields after the name"},
		{name: "truncated in name", in: "42 (ngi", wantErr: "no (name) field"},
		{name: "close before open", in: "42 )x( S 1", wantErr: "no (name) field"},
		{name: "empty", in: "", wantErr: "no (name) field"},
		{name: "state not a letter", in: "42 (x) SS 1 42 42" + tail, wantErr: `state "SS"`},
		{name: "bad ppid", in: "42 (x) S -3 42 42" + tail, wantErr: `ppid "-3"`},
		{name: "bad starttime", in: "42 (x) S 1 42 42" + strings.Replace(tail, "98765", "9x", 1), wantErr: `starttime "9x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseStat(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseStat(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStatus
		wantErr string
	}{
		{name: "typical", in: "Name:\tnginx\nUid:\t101\t102\t103\t104\nSigQ:\t0/1\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180004a07\n",
			want: procStatus{UID: 101, SigIgn: 0x1000, SigCgt: 0x180004a07}},
		{name: "name with colon", in: "Name:\ta:b\nUid:\t0\t0\t0\t0\nSigIgn:\t0\nSigCgt:\t1\n",
			want: procStatus{UID: 0, SigCgt: 1}},
		{name: "missing SigCgt", in: "Uid:\t0\t0\t0\t0\nSigIgn:\t0\n", wantErr: "missing"},
		{name: "bad hex", in: "Uid:\t0\t0\t0\t0\nSigIgn:\t0\nSigCgt:\tzz\n", wantErr: `SigCgt "zz"`},
		{name: "bad uid", in: "Uid:\tx\t0\t0\t0\nSigIgn:\t0\nSigCgt:\t0\n", wantErr: `Uid "x`},
		{name: "empty", in: "", wantErr: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("parseStatus = %+v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseStatus = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestReadStatSelf checks the parsers against the real /proc of this test.
func TestReadStatSelf(t *testing.T) {
	st, err := readStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	wantComm := filepath.Base(testBinary(t))[:min(commLen, len(filepath.Base(testBinary(t))))]
	if st.Comm != wantComm || st.PPID != os.Getppid() {
		t.Errorf("own stat = %+v; want comm %q, ppid %d", st, wantComm, os.Getppid())
	}
	status, err := readStatus("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if status.UID != os.Getuid() {
		t.Errorf("own uid = %d; want %d", status.UID, os.Getuid())
	}
	clock, err := readBootClock("/proc")
	if err != nil {
		t.Fatal(err)
	}
	// This process started before now and after the test binary was built.
	if start := clock.startTime(st.StartTicks); start.After(time.Now()) || time.Since(start) > time.Hour {
		t.Errorf("own start time = %s; want within the last hour", start)
	}
}

// FuzzParseStat builds stat lines around arbitrary names (spaces, parens,
// newlines) and checks the fields come back; a cut copy of each line must
// parse or fail without panicking.
func FuzzParseStat(f *testing.F) {
	f.Add("nginx", uint32(1), uint64(98765), uint16(0))
	f.Add("a) b (c", uint32(7), uint64(1), uint16(9))
	f.Add(") Z 9 9 9", uint32(0), uint64(0), uint16(30))
	f.Fuzz(func(t *testing.T, comm string, ppid uint32, start uint64, cut uint16) {
		line := fmt.Sprintf("42 (%s) S %d 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 0\n", comm, ppid, start)
		got, err := parseStat([]byte(line))
		if err != nil {
			t.Fatalf("parseStat(%q): %v", line, err)
		}
		want := procStat{Comm: comm, State: 'S', PPID: int(ppid), Flags: 4194560, StartTicks: start}
		if got != want {
			t.Fatalf("parseStat(%q) = %+v; want %+v", line, got, want)
		}
		_, _ = parseStat([]byte(line[:int(cut)%len(line)]))
		_, _ = parseStat([]byte(comm))
	})
}

// FuzzParseStatus feeds arbitrary text and checks well-formed values come
// back exactly.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Uid:\t0\t0\t0\t0\nSigIgn:\t0\nSigCgt:\t1\n"), uint32(1000), uint64(0x4a07), uint64(0x1000))
	f.Add([]byte("SigCgt:\n:\n\n"), uint32(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, raw []byte, uid uint32, cgt, ign uint64) {
		_, _ = parseStatus(raw)
		text := fmt.Sprintf("Name:\tapp\nUid:\t%d\t0\t0\t0\nSigIgn:\t%016x\nSigCgt:\t%016x\n", uid, ign, cgt)
		got, err := parseStatus([]byte(text))
		if err != nil {
			t.Fatalf("parseStatus(%q): %v", text, err)
		}
		if want := (procStatus{UID: int(uid), SigCgt: cgt, SigIgn: ign}); got != want {
			t.Fatalf("parseStatus(%q) = %+v; want %+v", text, got, want)
		}
	})
}
