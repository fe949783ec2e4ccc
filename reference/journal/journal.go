// Package journal is an append-only log of records in numbered segment files, made
// durable by group commit: records appended while the previous batch is being written
// and fsynced go out together in the next batch, with one write and one fsync, so
// concurrent writers share the cost of durability. It knows nothing of what its records
// mean; the queue's spool does.
//
// A record on disk is its payload's length (4 octets, big-endian), the CRC-32C of the
// payload (4 octets) and the payload; eight zero octets end a segment's records. A crash
// can leave only the last segment with a torn record at its end (a segment is fsynced
// before the next one is begun): Open cuts off everything after the last whole record
// of the last segment. Readers of a live log (another process) stop at a torn record
// instead.
//
// Segments after the first are zero-filled ahead of time, in the background, at twice
// the size of the one before up to the segment size: an fdatasync of octets written
// inside a file's size flushes the data alone, where one that grows the file commits
// the file system's journal too, which on ext4 costs it about twice as long.
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/mailflow/mailflow/reference/internal/lazydir"
)

// HeaderLen is the length of a record's header: what precedes its payload.
const HeaderLen = 8

// MaxRecord bounds a record's payload, so a corrupt length is not an allocation.
const MaxRecord = 1 << 30

// DefaultSegmentSize is where a segment ends and the next begins.
const DefaultSegmentSize = 64 << 20

// firstSegment is the size of a log's first segment: a server that takes a few
// messages keeps a small journal.
const firstSegment = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Pos is where a record is: its segment and the offset of its header.
type Pos struct {
	Seg uint64
	Off int64
}

// ErrClosed is the error of an append to a closed log.
var ErrClosed = errors.New("journal: closed")

// Option configures a Log.
type Option func(*Log)

// WithSegmentSize sets where segments end (DefaultSegmentSize).
func WithSegmentSize(n int64) Option { return func(l *Log) { l.segSize = n } }

// WithMakeDir sets how the log's directory is made before its first segment (a lazily
// made directory, say); by default it is made with os.MkdirAll and its entry fsynced.
func WithMakeDir(f func() error) Option { return func(l *Log) { l.makeDir = f } }

// Log is a journal open for appending.
type Log struct {
	dir     string
	segSize int64
	makeDir func() error

	mu      sync.Mutex
	pending []*entry
	kick    chan struct{}
	closed  bool
	done    chan struct{}

	// Owned by the committer once Open returns.
	head     *os.File
	headSeg  uint64
	headSize int64
	headCap  int64 // where the head ends: the next record that does not fit rotates
	dirMade  bool
	// prep is the next segment being zero-filled, nil when none is.
	prep chan prepared

	headNow atomic.Uint64 // headSeg, for other goroutines

	rmu     sync.RWMutex
	readers map[uint64]*os.File // segments open for reading

	fsyncs  atomic.Int64
	batches atomic.Int64

	// writeAt writes to a segment; a test puts a full disk here.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	// fdatasync makes a segment's data durable; a fuzz target that needs no
	// durability skips it.
	fdatasync func(fd int) error

	// The syncer fsyncs what the committer has written, so the committer goes on
	// writing while a commit is under way: a record that need not wait for durability
	// is in the file (and survives the process) within a write, not a commit, of
	// being appended, and the records that do wait share the next commit.
	smu      sync.Mutex
	swaiting []waiter
	sclosing bool
	skick    chan struct{}
	sdone    chan struct{}
}

// waiter is a record written and waiting for the fsync of its file; or, with retire
// set, a segment file the committer is done with, closed once the waiters before it
// are served.
type waiter struct {
	e      *entry
	pos    Pos
	f      *os.File
	retire *os.File
}

type entry struct {
	payload []byte
	sync    bool
	done    func(Pos, error)
}

// Record is one record found by a replay. Its Payload is valid only until the
// function it is given to returns.
type Record struct {
	Pos     Pos
	Payload []byte
}

// Open opens the log in dir for appending, after calling replay for every record in it
// in order (nil: no replay). A torn record at the end of the last segment is cut off. A
// directory that does not exist is an empty log, made with the first append.
func Open(dir string, replay func(Record) error, opts ...Option) (*Log, error) {
	l := &Log{dir: dir, segSize: DefaultSegmentSize, kick: make(chan struct{}, 1), done: make(chan struct{}),
		readers: map[uint64]*os.File{}, writeAt: (*os.File).WriteAt, fdatasync: unix.Fdatasync, skick: make(chan struct{}, 1), sdone: make(chan struct{})}
	for _, o := range opts {
		o(l)
	}
	if l.makeDir == nil {
		l.makeDir = func() error {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			return syncDir(filepath.Dir(dir))
		}
	}
	segs, err := Segments(dir)
	if err != nil {
		return nil, err
	}
	for i, seg := range segs {
		last := i == len(segs)-1
		end, err := scan(l.path(seg), seg, replay)
		var torn *TornError
		switch {
		case errors.As(err, &torn) && last:
			// What a crash left mid-write: never acknowledged; cut off below.
		case err != nil:
			return nil, fmt.Errorf("journal %s: %w", dir, err)
		}
		if last {
			f, err := os.OpenFile(l.path(seg), os.O_WRONLY, 0o600)
			if err != nil {
				return nil, fmt.Errorf("journal %s: %w", dir, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("journal %s: %w", dir, err)
			}
			if fi.Size() > end {
				// Whatever follows the last whole record goes, zeros or not: a crash
				// can leave a later record of an unacknowledged batch on disk behind
				// an earlier one that is not, and appends here would bring it back
				// (FuzzReplay found this). The cut is durable before any append.
				err := f.Truncate(end)
				if err == nil {
					err = l.fdatasync(int(f.Fd()))
				}
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("journal %s: cut after the last record: %w", dir, err)
				}
			}
			l.head, l.headSeg, l.headSize, l.dirMade = f, seg, end, true
			l.headCap = max(end, min(l.segSize, firstSegment))
			l.headNow.Store(seg)
		}
	}
	// A segment being zero-filled when the process ended is begun again when needed.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.seg.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	go l.commit()
	go l.syncer()
	return l, nil
}

// Segments lists the segment numbers in dir, ascending; a missing dir has none.
func Segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", dir, err)
	}
	var segs []uint64
	for _, e := range ents {
		var n uint64
		if _, err := fmt.Sscanf(e.Name(), "%016x.seg", &n); err == nil && e.Name() == segName(n) {
			segs = append(segs, n)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}

func segName(n uint64) string { return fmt.Sprintf("%016x.seg", n) }

func (l *Log) path(seg uint64) string { return filepath.Join(l.dir, segName(seg)) }

// TornError is a record that ends before its length says or fails its checksum.
type TornError struct {
	Seg uint64
	Off int64
	Why string
}

func (e *TornError) Error() string {
	return fmt.Sprintf("segment %s: torn record at offset %d: %s", segName(e.Seg), e.Off, e.Why)
}

// scan calls fn for each record of the segment file at path and returns the offset
// after the last whole record. A record that is torn or corrupt ends the scan with a
// *TornError.
func scan(path string, seg uint64, fn func(Record) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var hdr [HeaderLen]byte
	var buf []byte // reused: a replay of a big spool reads every message's data
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return off, nil
			}
			return off, &TornError{seg, off, "short header"}
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 {
			if binary.BigEndian.Uint32(hdr[4:]) == 0 {
				return off, nil // the zero-filled rest of the segment
			}
			return off, &TornError{seg, off, "empty record"}
		}
		if n > MaxRecord {
			return off, &TornError{seg, off, fmt.Sprintf("length %d", n)}
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		payload := buf[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, &TornError{seg, off, "short payload"}
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return off, &TornError{seg, off, "checksum"}
		}
		if fn != nil {
			if err := fn(Record{Pos: Pos{seg, off}, Payload: payload}); err != nil {
				return off, err
			}
		}
		off += HeaderLen + int64(n)
	}
}

// Read calls fn for every whole record in dir, in order, without changing anything: for
// a reader of a log another process is writing. It stops quietly at a torn record (an
// append under way) and skips a segment deleted while it reads.
func Read(dir string, fn func(Record) error) error {
	segs, err := Segments(dir)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		_, err := scan(filepath.Join(dir, segName(seg)), seg, fn)
		var torn *TornError
		switch {
		case errors.Is(err, os.ErrNotExist), errors.As(err, &torn):
		case err != nil:
			return fmt.Errorf("journal %s: %w", dir, err)
		}
	}
	return nil
}

// Append queues payload for the next batch and calls done, from the committer, once it
// is written (sync false) or written and fsynced (sync true), with its position or the
// error that lost it. done must not block.
func (l *Log) Append(payload []byte, sync bool, done func(Pos, error)) {
	if len(payload) > MaxRecord {
		done(Pos{}, fmt.Errorf("journal: record of %d octets", len(payload)))
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		done(Pos{}, ErrClosed)
		return
	}
	l.pending = append(l.pending, &entry{payload: payload, sync: sync, done: done})
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// AppendSync appends payload and returns once it is durable.
func (l *Log) AppendSync(payload []byte) (Pos, error) {
	type result struct {
		pos Pos
		err error
	}
	ch := make(chan result, 1)
	l.Append(payload, true, func(p Pos, err error) { ch <- result{p, err} })
	r := <-ch
	return r.pos, r.err
}

// Sync returns once everything appended before it is durable.
func (l *Log) Sync() error {
	_, err := l.AppendSync(nil)
	return err
}

// Flush returns once everything appended before it is written to its segment, durable
// or not: what ReadAt reads from then on, and every done of a record appended without
// sync has been called.
func (l *Log) Flush() error {
	ch := make(chan error, 1)
	l.Append(nil, false, func(_ Pos, err error) { ch <- err })
	return <-ch
}

// commit writes the pending batches until the log is closed.
func (l *Log) commit() {
	defer close(l.done)
	for {
		<-l.kick
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		closed := l.closed
		l.mu.Unlock()
		if len(batch) > 0 {
			l.write(batch)
		}
		if closed {
			l.mu.Lock()
			rest := l.pending
			l.pending = nil
			l.mu.Unlock()
			if len(rest) > 0 {
				l.write(rest)
			}
			if l.head != nil {
				l.toSyncer(waiter{retire: l.head})
				l.head = nil
			}
			l.smu.Lock()
			l.sclosing = true
			l.smu.Unlock()
			l.kickSyncer()
			<-l.sdone
			if l.prep != nil {
				if p := <-l.prep; p.err == nil {
					_ = os.Remove(l.path(p.seg) + ".tmp")
				}
			}
			return
		}
	}
}

// write puts one batch in the head segment (rotating as needed) with one write per
// segment; the records that wait for durability are answered by the syncer.
func (l *Log) write(batch []*entry) {
	var buf []byte
	var written []*entry // in buf
	// flush writes buf; with final (the segment ends) it fsyncs here and answers every
	// record written, otherwise the records that wait for durability go to the syncer.
	flush := func(final bool) error {
		start := l.headSize
		if len(buf) > 0 {
			if _, err := l.writeAt(l.head, buf, start); err != nil {
				// A full disk leaves a part written: cut it off, so the next batch
				// starts at a record boundary (SEC-010).
				_ = l.head.Truncate(start)
				return err
			}
		}
		if final && l.head != nil {
			if err := l.fdatasync(int(l.head.Fd())); err != nil {
				_ = l.head.Truncate(start)
				return err
			}
			l.fsyncs.Add(1)
		}
		l.headSize += int64(len(buf))
		off := start
		var ws []waiter
		for _, e := range written {
			var pos Pos
			if len(e.payload) > 0 {
				pos = Pos{l.headSeg, off}
				off += HeaderLen + int64(len(e.payload))
			}
			if final || !e.sync || l.head == nil {
				e.done(pos, nil)
				continue
			}
			ws = append(ws, waiter{e: e, pos: pos, f: l.head})
		}
		if len(ws) > 0 {
			l.toSyncer(ws...)
		}
		buf, written = buf[:0], written[:0]
		return nil
	}
	fail := func(err error, from []*entry) {
		for _, e := range from {
			e.done(Pos{}, err)
		}
	}
	l.batches.Add(1)
	for i, e := range batch {
		if len(e.payload) == 0 { // a Sync: covered by the next fsync of the head
			written = append(written, e)
			continue
		}
		need := HeaderLen + int64(len(e.payload))
		if l.head == nil || l.headSize+int64(len(buf))+need > l.headCap && l.headSize+int64(len(buf)) > 0 {
			// The segment ends: it is made durable before the next one begins, so only
			// the last segment can hold a torn record.
			if err := flush(true); err != nil {
				fail(err, written)
				fail(err, batch[i:])
				return
			}
			if err := l.rotate(); err != nil {
				fail(err, batch[i:])
				return
			}
		}
		var hdr [HeaderLen]byte
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(e.payload)))
		binary.BigEndian.PutUint32(hdr[4:], crc32.Checksum(e.payload, castagnoli))
		buf = append(buf, hdr[:]...)
		buf = append(buf, e.payload...)
		written = append(written, e)
	}
	if err := flush(false); err != nil {
		fail(err, written)
	}
	if l.head != nil && l.prep == nil && l.headSize > l.headCap/2 {
		l.prepare(l.headSeg+1, l.nextCap())
	}
}

// prepared is a zero-filled segment file under its temporary name.
type prepared struct {
	seg  uint64
	size int64
	err  error
}

func (l *Log) nextCap() int64 {
	if l.head == nil {
		return min(l.segSize, firstSegment)
	}
	return min(l.segSize, 2*l.headCap)
}

// prepare zero-fills segment seg of size octets, in the background, under a temporary
// name that Open removes.
func (l *Log) prepare(seg uint64, size int64) {
	ch := make(chan prepared, 1)
	l.prep = ch
	go func() {
		err := zeroFill(l.path(seg)+".tmp", size)
		ch <- prepared{seg, size, err}
	}()
}

func zeroFill(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zero := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(zero)) {
		if _, err := f.WriteAt(zero[:min(int64(len(zero)), size-off)], off); err != nil {
			f.Close()
			_ = os.Remove(path)
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

func (l *Log) toSyncer(ws ...waiter) {
	l.smu.Lock()
	l.swaiting = append(l.swaiting, ws...)
	l.smu.Unlock()
	l.kickSyncer()
}

func (l *Log) kickSyncer() {
	select {
	case l.skick <- struct{}{}:
	default:
	}
}

// syncer fsyncs, once for all of them, the files of the records waiting, then answers
// them, until the log is closed and nothing waits.
func (l *Log) syncer() {
	defer close(l.sdone)
	for {
		<-l.skick
		for {
			l.smu.Lock()
			ws := l.swaiting
			l.swaiting = nil
			closing := l.sclosing
			l.smu.Unlock()
			if len(ws) == 0 {
				if closing {
					return
				}
				break
			}
			errs := map[*os.File]error{}
			for _, w := range ws {
				if w.f == nil {
					continue
				}
				if _, done := errs[w.f]; !done {
					errs[w.f] = l.fdatasync(int(w.f.Fd()))
					l.fsyncs.Add(1)
				}
			}
			for _, w := range ws {
				if w.retire != nil {
					_ = w.retire.Close()
					continue
				}
				if err := errs[w.f]; err != nil {
					w.e.done(Pos{}, fmt.Errorf("journal %s: fsync: %w", l.dir, err))
					continue
				}
				w.e.done(w.pos, nil)
			}
		}
	}
}

// rotate begins a new head segment, its directory entry durable before any record in
// it is acknowledged.
func (l *Log) rotate() error {
	if !l.dirMade {
		if err := l.makeDir(); err != nil {
			return fmt.Errorf("journal %s: %w", l.dir, err)
		}
		l.dirMade = true
	}
	next, size := l.headSeg+1, l.nextCap()
	var f *os.File
	var err error
	if l.prep != nil {
		select {
		case p := <-l.prep:
			l.prep = nil
			if p.err == nil && p.seg != next {
				_ = os.Remove(l.path(p.seg) + ".tmp") // begun for a segment made without it
			}
			if p.err == nil && p.seg == next {
				if err := os.Rename(l.path(next)+".tmp", l.path(next)); err == nil {
					f, err = os.OpenFile(l.path(next), os.O_WRONLY, 0o600)
					if err != nil {
						return fmt.Errorf("journal %s: %w", l.dir, err)
					}
					size = p.size
				}
			}
		default:
			// Not filled yet: this segment grows as it is written, and the next one
			// is zero-filled once it is half full.
		}
	}
	if f == nil {
		if f, err = os.OpenFile(l.path(next), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
			return fmt.Errorf("journal %s: %w", l.dir, err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		_ = os.Remove(l.path(next))
		return fmt.Errorf("journal %s: %w", l.dir, err)
	}
	l.fsyncs.Add(1)
	if l.head != nil {
		l.toSyncer(waiter{retire: l.head})
	}
	l.head, l.headSeg, l.headSize, l.headCap = f, next, 0, size
	l.headNow.Store(next)
	return nil
}

// ReadAt reads n octets at off in segment seg.
func (l *Log) ReadAt(seg uint64, off int64, n int) ([]byte, error) {
	l.rmu.RLock()
	f := l.readers[seg]
	l.rmu.RUnlock()
	if f == nil {
		l.rmu.Lock()
		if f = l.readers[seg]; f == nil {
			var err error
			if f, err = os.Open(l.path(seg)); err != nil {
				l.rmu.Unlock()
				return nil, fmt.Errorf("journal %s: %w", l.dir, err)
			}
			l.readers[seg] = f
		}
		l.rmu.Unlock()
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("journal %s: segment %s at %d: %w", l.dir, segName(seg), off, err)
	}
	return b, nil
}

// Head is the segment appends go to now (0 before the first).
func (l *Log) Head() uint64 { return l.headNow.Load() }

// Remove deletes a segment no record of which is needed any more. The directory is not
// fsynced: a segment that comes back after a crash only replays records its readers
// know to be superseded.
func (l *Log) Remove(seg uint64) error {
	l.rmu.Lock()
	if f := l.readers[seg]; f != nil {
		f.Close()
		delete(l.readers, seg)
	}
	l.rmu.Unlock()
	if err := os.Remove(l.path(seg)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal %s: %w", l.dir, err)
	}
	return nil
}

// Stats are counts since Open.
type Stats struct {
	Fsyncs  int64 // fdatasync of a segment and fsync of the directory
	Batches int64 // batches written
}

// Stats reads the counters.
func (l *Log) Stats() Stats { return Stats{Fsyncs: l.fsyncs.Load(), Batches: l.batches.Load()} }

// Close writes what is pending, fsyncs it and closes the log; appends after it fail.
func (l *Log) Close() error {
	err := l.Sync()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-l.done
	l.rmu.Lock()
	for s, f := range l.readers {
		f.Close()
		delete(l.readers, s)
	}
	l.rmu.Unlock()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

func syncDir(dir string) error { return lazydir.SyncDir(dir) }
