package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func records(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	if err := Read(dir, func(r Record) error { got = append(got, string(r.Payload)); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestReplayInOrder: what was appended comes back, in order, across segments and a
// reopen.
func TestReplayInOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "j")
	l, err := Open(dir, nil, WithSegmentSize(64))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("record %02d", i)
		want = append(want, p)
		if _, err := l.AppendSync([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := Segments(dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments of 64 octets for 20 records of 17, want several", len(segs))
	}
	var got []string
	l2, err := Open(dir, func(r Record) error { got = append(got, string(r.Payload)); return nil }, WithSegmentSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
	pos, err := l2.AppendSync([]byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l2.ReadAt(pos.Seg, pos.Off+HeaderLen, len("after"))
	if err != nil || string(b) != "after" {
		t.Fatalf("ReadAt the appended record: %q, %v", b, err)
	}
}

// TestTornTailIsCut: a record a crash left half written is never acknowledged, so Open
// cuts it off, and a reader of a live log stops before it.
func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, nil)
	for _, p := range []string{"one", "two"} {
		if _, err := l.AppendSync([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	seg := filepath.Join(dir, segName(1))
	whole, _ := os.ReadFile(seg)
	for _, tail := range [][]byte{
		{0, 0},                               // a short header
		{0, 0, 0, 9, 1, 2, 3, 4, 'a', 'b'},   // a short payload
		{0, 0, 0, 2, 0, 0, 0, 0, 'h', 'i'},   // a bad checksum
		{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, // an impossible length
	} {
		if err := os.WriteFile(seg, append(append([]byte(nil), whole...), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := records(t, dir); fmt.Sprint(got) != "[one two]" {
			t.Errorf("tail %x: a reader saw %q", tail, got)
		}
		var got []string
		l, err := Open(dir, func(r Record) error { got = append(got, string(r.Payload)); return nil })
		if err != nil {
			t.Fatalf("tail %x: %v", tail, err)
		}
		if _, err := l.AppendSync([]byte("three")); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if fmt.Sprint(got) != "[one two]" {
			t.Errorf("tail %x: replayed %q", tail, got)
		}
		if after := records(t, dir); fmt.Sprint(after) != "[one two three]" {
			t.Errorf("tail %x: after an append the log holds %q", tail, after)
		}
	}
}

// TestGroupCommit: concurrent appenders share fsyncs, and each hears back only once the
// fsync that covers its record is done.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, nil)
	defer l.Close()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := l.AppendSync(bytes.Repeat([]byte{'x'}, 1000)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	if st.Fsyncs >= writers*each {
		t.Errorf("%d fsyncs for %d records appended by %d writers at once, want fewer", st.Fsyncs, writers*each, writers)
	}
	if n := len(records(t, dir)); n != writers*each {
		t.Errorf("%d records on disk, want %d", n, writers*each)
	}
}

// TestFailedWriteLeavesABoundary: a write that fails (a full disk) is reported to every
// appender of its batch and leaves no part of a record behind, so later appends are
// read back whole.
func TestFailedWriteLeavesABoundary(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, nil)
	if _, err := l.AppendSync([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	full := true
	l.writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if full {
			n, _ := f.WriteAt(b[:len(b)/2], off) // what a full disk takes
			return n, fmt.Errorf("write: %w", errNoSpace)
		}
		return f.WriteAt(b, off)
	}
	if _, err := l.AppendSync(bytes.Repeat([]byte("refused "), 100)); err == nil {
		t.Fatal("an append on a full disk succeeded")
	}
	if fi, err := os.Stat(filepath.Join(dir, segName(1))); err != nil || fi.Size() != HeaderLen+4 {
		t.Fatalf("after the failed write the segment is %v octets (%v), want the first record's %d", fi.Size(), err, HeaderLen+4)
	}
	full = false
	if _, err := l.AppendSync([]byte("later")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := records(t, dir); fmt.Sprint(got) != "[kept later]" {
		t.Fatalf("log holds %q, want [kept later]", got)
	}
}

// TestRemove: a removed segment is gone and its records with it.
func TestRemove(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, nil, WithSegmentSize(20))
	p1, _ := l.AppendSync([]byte("first record"))
	p2, _ := l.AppendSync([]byte("second record"))
	if p1.Seg == p2.Seg {
		t.Fatalf("both records in segment %d", p1.Seg)
	}
	if _, err := l.ReadAt(p1.Seg, p1.Off, 4); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(p1.Seg); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := records(t, dir); fmt.Sprint(got) != "[second record]" {
		t.Fatalf("log holds %q", got)
	}
}

var errNoSpace = fmt.Errorf("no space left on device")

// TestZeroFilledSegments: segments zero-filled ahead of time end their records at the
// first zero header, for the log that reopens them and for a reader, and appends after
// a reopen go right after the last record.
func TestZeroFilledSegments(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, nil, WithSegmentSize(4096))
	var want []string
	for i := 0; i < 200; i++ {
		p := fmt.Sprintf("%03d %s", i, bytes.Repeat([]byte{'r'}, 90))
		want = append(want, p)
		if _, err := l.AppendSync([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := records(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a reader of the live log saw %d records, want %d", len(got), len(want))
	}
	l.Close()
	segs, _ := Segments(dir)
	filled := 0
	for _, seg := range segs {
		if fi, _ := os.Stat(filepath.Join(dir, segName(seg))); fi.Size() == 4096 {
			filled++
		}
	}
	t.Logf("%d segments, %d of them zero-filled ahead", len(segs), filled)
	var got []string
	l2, err := Open(dir, func(r Record) error { got = append(got, string(r.Payload)); return nil }, WithSegmentSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	if _, err := l2.AppendSync([]byte("after the reopen")); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	all := records(t, dir)
	if len(all) != len(want)+1 || all[len(all)-1] != "after the reopen" {
		t.Fatalf("after the reopen the log holds %d records ending %q", len(all), all[len(all)-1])
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) > 0 {
		t.Errorf("left behind: %v", tmps)
	}
}
