package journal

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// withoutFsync spares a fuzz target the fsyncs, which would make it a disk benchmark.
func withoutFsync() Option { return func(l *Log) { l.fdatasync = func(int) error { return nil } } }

// record encodes payload as a record on disk.
func record(payload string) []byte {
	var hdr [HeaderLen]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum([]byte(payload), castagnoli))
	return append(hdr[:], payload...)
}

// FuzzReplay feeds a segment file of any octets to a reader and to Open: neither
// panics; Open replays exactly the whole records a reader sees before the first torn
// one, cuts the rest, and an append after it comes back after those records.
func FuzzReplay(f *testing.F) {
	two := append(record("one"), record("two")...)
	f.Add(two)
	f.Add(append(append([]byte(nil), two...), 0, 0, 0, 9, 1, 2, 3, 4, 'x'))
	f.Add(append(append([]byte(nil), two...), make([]byte, 64)...)) // zero-filled rest
	f.Add(append(record("a"), 0, 0, 0, 0, 0, 0, 0, 1))              // an empty record with a checksum
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		var read []string
		if err := Read(dir, func(r Record) error { read = append(read, string(r.Payload)); return nil }); err != nil {
			t.Fatalf("Read: %v", err)
		}
		var replayed []string
		l, err := Open(dir, func(r Record) error { replayed = append(replayed, string(r.Payload)); return nil }, withoutFsync())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !slices.Equal(read, replayed) {
			t.Fatalf("a reader saw %q, Open replayed %q", read, replayed)
		}
		if _, err := l.AppendSync([]byte("appended")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		var after []string
		if err := Read(dir, func(r Record) error { after = append(after, string(r.Payload)); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := append(slices.Clone(read), "appended"); !slices.Equal(after, want) {
			t.Fatalf("after an append the log holds %q, want %q", after, want)
		}
	})
}
