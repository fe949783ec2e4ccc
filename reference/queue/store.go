package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unique"

	"github.com/mailflow/mailflow/reference/internal/lazydir"
	"github.com/mailflow/mailflow/reference/journal"
)

// Spool is a directory holding a journal of messages (package journal): a message is
// one record with its envelope and data, made durable by one fsync that concurrent
// sessions share (group commit); what happens to it later is appended as further
// records (its envelope as it now is, or that it is done), never rewritten in place.
// Segments whose records no message needs any more are deleted, and sparse old ones
// are compacted into the head, off the path of any session.
type Spool struct {
	dir  string
	made *lazydir.Dir

	mu   sync.Mutex
	log  *journal.Log     // nil until Recover
	live map[string]*slot // messages not done, by ID
	pins map[uint64]int   // per segment: the data and latest envelopes of live messages in it
	used map[uint64]int64 // per segment: octets of those
	segs map[uint64]bool  // every segment known to exist
	// compacting: a compaction pass is under way.
	compacting bool
	compaction sync.WaitGroup
	segSize    int64
}

// slot is where a live message's records are.
// Each live message pins two segments, the same one or not: that of its message record
// (data) and that of its latest envelope (state). A spool holds a slot for every
// message it holds, so the fields are 32 bits: segments are numbered from 1 up, and
// nothing in a segment lies past maxSegment plus journal.MaxRecord.
type slot struct {
	dataSeg   uint32
	stateSeg  uint32 // the segment of the latest envelope written
	dataOff   uint32 // of the data itself, past the record's header and envelope
	dataLen   uint32
	dataSize  uint32 // of the whole message record
	stateSize uint32 // of that state record (0: the message record is the latest)
	envOff    uint32 // where that envelope (JSON) is in stateSeg
	envLen    uint32
	// pending counts state records appended and not yet written: until they are, the
	// envelope on disk is not the latest.
	pending int32
}

// maxSegment is the largest segment size a spool takes (WithSegmentSize), so that
// every offset in a segment fits a slot.
const maxSegment = 1 << 30

// data and envelope are where the message's data and latest envelope are, as
// journal.ReadAt takes them.
func (sl *slot) data() (uint64, int64, int) {
	return uint64(sl.dataSeg), int64(sl.dataOff), int(sl.dataLen)
}

func (sl *slot) envelope() (uint64, int64, int) {
	return uint64(sl.stateSeg), int64(sl.envOff), int(sl.envLen)
}

// setState points the slot at a state record of size octets written at p.
func (sl *slot) setState(p journal.Pos, size int) {
	sl.stateSeg, sl.stateSize = uint32(p.Seg), uint32(size)
	sl.envOff, sl.envLen = uint32(p.Off+journal.HeaderLen+1), uint32(size-journal.HeaderLen-1)
}

// messageRecord encodes a message record and says where its envelope starts in it.
func messageRecord(env, data []byte) (rec []byte, envStart int) {
	var n [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(n[:], uint64(len(env)))
	rec = make([]byte, 0, 1+k+len(env)+len(data))
	rec = append(append(append(append(rec, recMessage), n[:k]...), env...), data...)
	return rec, 1 + k
}

// messageSlot is where the parts of a message record of recLen octets written at p are:
// its envelope of envLen octets at envStart, its data after it.
func messageSlot(p journal.Pos, recLen, envStart, envLen int) *slot {
	envOff := p.Off + journal.HeaderLen + int64(envStart)
	return &slot{dataSeg: uint32(p.Seg), dataOff: uint32(envOff + int64(envLen)), dataLen: uint32(recLen - envStart - envLen),
		dataSize: uint32(journal.HeaderLen + recLen), stateSeg: uint32(p.Seg), envOff: uint32(envOff), envLen: uint32(envLen)}
}

// Record kinds, the first octet of a journal record's payload.
const (
	recMessage = 'M' // uvarint length of the envelope, the envelope (JSON), the data
	recState   = 'S' // the envelope (JSON) as it is now
	recDone    = 'D' // the message ID: every recipient is done
)

// SpoolOption configures a Spool.
type SpoolOption func(*Spool)

// WithSegmentSize sets the size of the journal's segments.
func WithSegmentSize(n int64) SpoolOption { return func(s *Spool) { s.segSize = n } }

// OpenSpool opens the spool in dir. It writes nothing: the directory is made with the
// first message, and until Recover the spool only reads, so a spool a live server
// writes can be listed by another process.
func OpenSpool(dir string, opts ...SpoolOption) (*Spool, error) {
	made, err := lazydir.Open(dir, lazydir.SyncDir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, made: made, segSize: journal.DefaultSegmentSize}
	for _, o := range opts {
		o(s)
	}
	if s.segSize <= 0 || s.segSize > maxSegment {
		return nil, fmt.Errorf("spool %s: segment size %d: want 1 to %d octets", dir, s.segSize, maxSegment)
	}
	return s, nil
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// NewID makes a queue ID that sorts by time of arrival.
func NewID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x%s", now.UnixNano(), hex.EncodeToString(b[:]))
}

// replayed is what a replay keeps of one message.
type replayed struct {
	slot
	env  []byte // the latest envelope, for the messages Recover returns
	done bool
}

// replay folds records into the messages they describe; the latest record of a
// message wins.
func replay(msgs map[string]*replayed) func(journal.Record) error {
	return func(r journal.Record) error {
		p := r.Payload
		if len(p) == 0 {
			return nil
		}
		switch p[0] {
		case recMessage:
			n, k := binary.Uvarint(p[1:])
			if k <= 0 || uint64(len(p)-1-k) < n {
				return fmt.Errorf("segment %d at %d: bad message record", r.Pos.Seg, r.Pos.Off)
			}
			env := p[1+k : 1+k+int(n)]
			id, err := envID(env)
			if err != nil {
				return fmt.Errorf("segment %d at %d: %w", r.Pos.Seg, r.Pos.Off, err)
			}
			msgs[id] = &replayed{slot: *messageSlot(r.Pos, len(p), 1+k, int(n)), env: append([]byte(nil), env...)}
		case recState:
			id, err := envID(p[1:])
			if err != nil {
				return fmt.Errorf("segment %d at %d: %w", r.Pos.Seg, r.Pos.Off, err)
			}
			if m := msgs[id]; m != nil && !m.done {
				m.setState(r.Pos, journal.HeaderLen+len(p))
				m.env = append([]byte(nil), p[1:]...)
			}
		case recDone:
			if m := msgs[string(p[1:])]; m != nil {
				m.done = true
			}
		}
		return nil
	}
}

func envID(env []byte) (string, error) {
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(env, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("envelope without an ID: %v", err)
	}
	return m.ID, nil
}

func decode(env []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(env, &m); err != nil {
		return nil, err
	}
	// A queue that holds many messages holds many copies of a few strings: the
	// sender of a mailing, the next hop's deferral, the queue's name, the state. One
	// copy each keeps a queue of 100,000 within what Postfix takes for as many.
	m.From, m.LastReply, m.Queue = intern(m.From), intern(m.LastReply), intern(m.Queue)
	for i := range m.Recipients {
		r := &m.Recipients[i]
		r.Addr, r.State, r.Reply = intern(r.Addr), State(intern(string(r.State))), intern(r.Reply)
	}
	return &m, nil
}

func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// Recover opens the spool for writing and returns the messages it holds, oldest first.
// It cuts off a record a crash left half written (never acknowledged), and takes in
// the one-file-per-message spool of earlier versions (ID.json and ID.eml). On a spool
// already open for writing it returns what it holds.
func (s *Spool) Recover() ([]*Message, error) {
	s.mu.Lock()
	if s.log == nil {
		defer s.mu.Unlock()
		envs, err := s.recover()
		if err != nil {
			return nil, err
		}
		return s.decodeAll(envs)
	}
	s.mu.Unlock()
	return s.List()
}

// recover opens the journal, under s.mu, and returns the latest envelope of each
// message it holds.
func (s *Spool) recover() (map[string][]byte, error) {
	msgs := map[string]*replayed{}
	log, err := journal.Open(s.dir, replay(msgs), journal.WithSegmentSize(s.segSize), journal.WithMakeDir(s.made.Make))
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.log = log
	s.live, s.pins, s.used, s.segs = map[string]*slot{}, map[uint64]int{}, map[uint64]int64{}, map[uint64]bool{}
	segs, err := journal.Segments(s.dir)
	if err != nil {
		return nil, err
	}
	for _, seg := range segs {
		s.segs[seg] = true
	}
	envs := map[string][]byte{}
	for id, r := range msgs {
		if !r.done {
			sl := r.slot
			s.live[id] = &sl
			s.pin(&sl)
			envs[id] = r.env
		}
	}
	legacy, err := s.takeLegacy()
	if err != nil {
		return nil, err
	}
	for id, env := range legacy {
		envs[id] = env
	}
	s.sweep()
	return envs, nil
}

// decodeAll decodes envelopes by message ID, oldest message first.
func (s *Spool) decodeAll(envs map[string][]byte) ([]*Message, error) {
	out := make([]*Message, 0, len(envs))
	for id, env := range envs {
		m, err := decode(env)
		if err != nil {
			return nil, fmt.Errorf("spool %s: message %s: %w", s.dir, id, err)
		}
		m.ID = id // one copy of the ID, the spool's, for the queue's index too
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// liveMessages reads and decodes, under s.mu, the latest envelope of every live
// message; the caller has made the journal's appends written.
func (s *Spool) liveMessages() ([]*Message, error) {
	envs := make(map[string][]byte, len(s.live))
	for id, sl := range s.live {
		env, err := s.log.ReadAt(sl.envelope())
		if err != nil {
			return nil, fmt.Errorf("spool %s: message %s: %w", s.dir, id, err)
		}
		envs[id] = env
	}
	return s.decodeAll(envs)
}

// takeLegacy moves the messages of a one-file-per-message spool into the journal,
// each durable there before its files go.
func (s *Spool) takeLegacy() (map[string][]byte, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.dir, err)
	}
	envs := map[string][]byte{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			if strings.HasSuffix(name, ".json.tmp") {
				_ = os.Remove(filepath.Join(s.dir, name))
			}
			continue
		}
		env, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return nil, fmt.Errorf("spool %s: %w", s.dir, err)
		}
		m, err := decode(env)
		if err != nil {
			return nil, fmt.Errorf("spool %s: %s: %w", s.dir, name, err)
		}
		eml := filepath.Join(s.dir, m.ID+".eml")
		data, err := os.ReadFile(eml)
		if err != nil {
			return nil, fmt.Errorf("spool %s: %w", s.dir, err)
		}
		s.mu.Unlock()
		err = s.Put(m, data)
		s.mu.Lock()
		if err != nil {
			return nil, err
		}
		envs[m.ID] = env
		_ = os.Remove(filepath.Join(s.dir, name))
		_ = os.Remove(eml)
	}
	return envs, nil
}

// List returns the messages the spool holds, oldest first. On a spool open for writing
// it is what has been appended, made durable first; otherwise it is read from disk as
// far as whole records go.
func (s *Spool) List() ([]*Message, error) {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	if log == nil {
		msgs := map[string]*replayed{}
		if err := journal.Read(s.dir, replay(msgs)); err != nil {
			return nil, fmt.Errorf("spool %s: %w", s.dir, err)
		}
		envs := map[string][]byte{}
		for id, r := range msgs {
			if !r.done {
				envs[id] = r.env
			}
		}
		return s.decodeAll(envs)
	}
	if err := log.Sync(); err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveMessages()
}

// writer is the journal, under s.mu, opened (recovered) by the first write.
func (s *Spool) writer() (*journal.Log, error) {
	if s.log == nil {
		if _, err := s.recover(); err != nil {
			return nil, err
		}
	}
	return s.log, nil
}

// Put stores a new message, envelope and data in one record, and returns once it is
// durable. A message is in the spool exactly when that record is whole on disk, so a
// crash mid-Put leaves nothing of it, and a full disk leaves nothing behind (SEC-010).
func (s *Spool) Put(m *Message, data []byte) error {
	if m.ID == "" {
		return errors.New("spool put: message has no ID")
	}
	env, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("spool put %s: %w", m.ID, err)
	}
	rec, envStart := messageRecord(env, data)
	s.mu.Lock()
	log, err := s.writer()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	ch := make(chan error, 1)
	log.Append(rec, true, func(p journal.Pos, err error) {
		if err == nil {
			sl := messageSlot(p, len(rec), envStart, len(env))
			s.mu.Lock()
			s.segs[p.Seg] = true
			s.live[m.ID] = sl
			s.pin(sl)
			s.mu.Unlock()
		}
		ch <- err
	})
	s.mu.Unlock()
	if err := <-ch; err != nil {
		return fmt.Errorf("spool put %s: %w", m.ID, err)
	}
	s.maybeCompact()
	return nil
}

// Save appends m's envelope as it is now and returns once it is durable: for what
// must survive a crash (an attempt under way, which counts towards poison).
func (s *Spool) Save(m *Message) error { return s.state(m, true) }

// Note appends m's envelope as it is now without waiting for it to be durable: the
// next fsync covers it, and a crash before that costs a repeated attempt or notice,
// never a message.
func (s *Spool) Note(m *Message) error { return s.state(m, false) }

func (s *Spool) state(m *Message, sync bool) error {
	env, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	rec := append([]byte{recState}, env...)
	s.mu.Lock()
	log, err := s.writer()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	sl := s.live[m.ID]
	if sl == nil {
		s.mu.Unlock()
		return fmt.Errorf("spool save %s: not in the spool", m.ID)
	}
	sl.pending++
	ch := make(chan error, 1)
	log.Append(rec, sync, func(p journal.Pos, err error) {
		s.mu.Lock()
		// A record that waited for its fsync may be answered after a later one that
		// did not: only the latest in the journal is the message's envelope (a
		// compaction may have replaced the slot meanwhile, and carried the count over).
		if cur := s.live[m.ID]; cur != nil {
			cur.pending--
			if err == nil && cur.before(p) {
				s.segs[p.Seg] = true
				s.pins[p.Seg]++
				s.used[p.Seg] += int64(journal.HeaderLen + len(rec))
				s.unpinSeg(uint64(cur.stateSeg), int64(cur.stateSize))
				cur.setState(p, journal.HeaderLen+len(rec))
			}
		}
		s.mu.Unlock()
		ch <- err
	})
	s.mu.Unlock()
	if !sync {
		return nil
	}
	if err := <-ch; err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	return nil
}

// Remove records that a message is done. It does not wait for the record to be
// durable: a crash that brings the message back costs a duplicate delivery, never a
// loss.
func (s *Spool) Remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := s.writer()
	if err != nil {
		return err
	}
	sl := s.live[id]
	if sl == nil {
		return nil
	}
	delete(s.live, id)
	s.unpin(sl)
	log.Append(append([]byte{recDone}, id...), false, func(journal.Pos, error) {})
	return nil
}

// Envelope reads the latest envelope of a message the spool holds, for a queue that
// keeps no envelope in memory while the message waits. A state record appended and not
// yet written is waited for, so it is the envelope as last saved or noted.
func (s *Spool) Envelope(id string) (*Message, error) {
	for flushed := false; ; flushed = true {
		s.mu.Lock()
		sl, log := s.live[id], s.log
		if sl == nil || log == nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("spool envelope %s: %w", id, os.ErrNotExist)
		}
		if sl.pending > 0 && !flushed {
			s.mu.Unlock()
			if err := log.Flush(); err != nil {
				return nil, fmt.Errorf("spool envelope %s: %w", id, err)
			}
			continue
		}
		// Read under s.mu: a compaction cannot move the envelope and drop its segment
		// meanwhile. An envelope is a few hundred octets, mostly in the page cache.
		env, err := log.ReadAt(sl.envelope())
		s.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("spool envelope %s: %w", id, err)
		}
		m, err := decode(env)
		if err != nil {
			return nil, fmt.Errorf("spool envelope %s: %w", id, err)
		}
		return m, nil
	}
}

// Data reads a message's data.
func (s *Spool) Data(id string) ([]byte, error) {
	s.mu.Lock()
	sl := s.live[id]
	log := s.log
	s.mu.Unlock()
	if sl == nil || log == nil {
		return nil, fmt.Errorf("spool data %s: %w", id, os.ErrNotExist)
	}
	b, err := log.ReadAt(sl.data())
	if err != nil {
		return nil, fmt.Errorf("spool data %s: %w", id, err)
	}
	return b, nil
}

// SpoolStats are the journal's counters since Recover.
type SpoolStats = journal.Stats

// Stats reads the journal's counters (zero before Recover).
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	if log == nil {
		return SpoolStats{}
	}
	return log.Stats()
}

// Close waits for a compaction under way, makes what was appended durable and closes
// the journal.
func (s *Spool) Close() error {
	s.compaction.Wait()
	s.mu.Lock()
	log := s.log
	s.mu.Unlock()
	if log == nil {
		return nil
	}
	return log.Close()
}

// before says whether the slot's latest envelope is in the journal before the record
// at p.
func (sl *slot) before(p journal.Pos) bool {
	seg := uint64(sl.stateSeg)
	return p.Seg > seg || p.Seg == seg && p.Off+journal.HeaderLen >= int64(sl.envOff)
}

// pin counts, under s.mu, a live message's two references against their segments.
func (s *Spool) pin(sl *slot) {
	s.pins[uint64(sl.dataSeg)]++
	s.used[uint64(sl.dataSeg)] += int64(sl.dataSize)
	s.pins[uint64(sl.stateSeg)]++
	s.used[uint64(sl.stateSeg)] += int64(sl.stateSize)
}

func (s *Spool) unpin(sl *slot) {
	s.unpinSeg(uint64(sl.dataSeg), int64(sl.dataSize))
	s.unpinSeg(uint64(sl.stateSeg), int64(sl.stateSize))
}

// unpinSeg drops one pin of seg, under s.mu, and deletes a segment behind the head that
// no live message needs.
func (s *Spool) unpinSeg(seg uint64, size int64) {
	s.pins[seg]--
	s.used[seg] -= size
	if s.pins[seg] <= 0 {
		delete(s.pins, seg)
		delete(s.used, seg)
		if seg < s.log.Head() {
			s.drop(seg)
		}
	}
}

// sweep deletes, under s.mu, every segment behind the head that no live message needs.
func (s *Spool) sweep() {
	head := s.log.Head()
	for seg := range s.segs {
		if seg < head && s.pins[seg] == 0 {
			s.drop(seg)
		}
	}
}

func (s *Spool) drop(seg uint64) {
	delete(s.segs, seg)
	if err := s.log.Remove(seg); err != nil {
		// Kept: it only replays records that later ones supersede.
		s.segs[seg] = true
	}
}

// maybeCompact starts a compaction pass when the journal has moved to a new segment
// since the last one.
func (s *Spool) maybeCompact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	head := s.log.Head()
	if s.compacting || len(s.segs) < 2 {
		return
	}
	s.sweep()
	var sparse []uint64
	for seg := range s.segs {
		if seg < head && s.used[seg] < s.segSize/4 {
			sparse = append(sparse, seg)
		}
	}
	if len(sparse) == 0 {
		return
	}
	s.compacting = true
	s.compaction.Add(1)
	go s.compact(sparse)
}

// compact rewrites into the head the records live messages still need from sparse old
// segments, durably, so those segments can go. A message's copy is appended under s.mu
// with its latest envelope, so it cannot overtake a later state record; a message with
// a state record not written yet waits for the next pass.
func (s *Spool) compact(segs []uint64) {
	defer s.compaction.Done()
	defer func() {
		s.mu.Lock()
		s.compacting = false
		s.mu.Unlock()
	}()
	in := map[uint64]bool{}
	for _, seg := range segs {
		in[seg] = true
	}
	s.mu.Lock()
	var ids []string
	for id, sl := range s.live {
		if in[uint64(sl.dataSeg)] || in[uint64(sl.stateSeg)] {
			ids = append(ids, id)
		}
	}
	log := s.log
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		s.mu.Lock()
		sl := s.live[id]
		var was slot
		if sl != nil {
			was = *sl
		}
		s.mu.Unlock()
		if sl == nil || was.pending > 0 {
			continue // gone, or its latest envelope not written yet: the next pass
		}
		data, err := log.ReadAt(was.data())
		if err != nil {
			continue
		}
		env, err := log.ReadAt(was.envelope())
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.live[id] != sl || *sl != was {
			s.mu.Unlock()
			continue // a state record came meanwhile: the next pass
		}
		rec, envStart := messageRecord(env, data)
		wg.Add(1)
		// Appended under s.mu: a state record appended after it is written after it.
		log.Append(rec, true, func(p journal.Pos, err error) {
			defer wg.Done()
			if err != nil {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			cur := s.live[id]
			if cur == nil {
				return
			}
			moved := messageSlot(p, len(rec), envStart, len(env))
			moved.pending = cur.pending
			if !cur.before(p) {
				// A state record appended after the copy was answered first (it did
				// not wait for an fsync): it stays the latest.
				moved.stateSeg, moved.stateSize, moved.envOff, moved.envLen = cur.stateSeg, cur.stateSize, cur.envOff, cur.envLen
			}
			s.segs[p.Seg] = true
			s.live[id] = moved
			s.pin(moved)
			s.unpin(cur)
		})
		s.mu.Unlock()
	}
	wg.Wait()
}
