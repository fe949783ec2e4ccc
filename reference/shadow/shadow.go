package shadow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/internal/lazydir"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/trace"
)

// QueuePrefix begins the name of every shadow queue; QueueName is the one of a
// primary, as Get-Queue lists Exchange's "Shadow Redundancy" queues.
const QueuePrefix = "Shadow Redundancy"

func QueueName(primary string) string { return QueuePrefix + " (" + primary + ")" }

// Record is one shadow copy: the message as it was relayed (only the recipients the
// primary took), and what the primary is to be asked.
type Record struct {
	Message queue.Message `json:"message"`
	// Primary names the server the message was relayed to; Addr is where it answers.
	Primary string `json:"primary"`
	Addr    string `json:"addr"`
	// PrimaryID is the queue ID the primary gave in its 250; Incarnation is its spool's
	// when the message was relayed.
	PrimaryID   string    `json:"primary_id"`
	Incarnation string    `json:"incarnation"`
	Kept        time.Time `json:"kept"`
}

// Resubmitter puts a message back into the shadow server's own queue; it returns
// once the message is durable there.
type Resubmitter func(ctx context.Context, m *queue.Message, data []byte) error

// Manager keeps a server's shadow copies and the heartbeat that settles them.
type Manager struct {
	dir      *lazydir.Dir
	clock    clock.Clock
	trace    trace.Recorder
	server   string
	log      *slog.Logger
	timeout  time.Duration
	retries  int
	discard  time.Duration
	resubmit Resubmitter
	query    Querier
	names    map[string]string // "ip:port" -> server name

	mu      sync.Mutex
	recs    map[string]*Record
	inc     map[string]string    // primary address -> incarnation last seen
	contact map[string]time.Time // primary address -> last answer (or relay)
	unasked map[string]time.Time // next hop address -> when Prepare last got no answer
}

// Option configures a Manager.
type Option func(*Manager)

func WithClock(c clock.Clock) Option         { return func(m *Manager) { m.clock = c } }
func WithTrace(r trace.Recorder) Option      { return func(m *Manager) { m.trace = r } }
func WithServer(name string) Option          { return func(m *Manager) { m.server = name } }
func WithLogger(l *slog.Logger) Option       { return func(m *Manager) { m.log = l } }
func WithQuerier(q Querier) Option           { return func(m *Manager) { m.query = q } }
func WithResubmitter(r Resubmitter) Option   { return func(m *Manager) { m.resubmit = r } }
func WithAutoDiscard(d time.Duration) Option { return func(m *Manager) { m.discard = d } }
func WithHeartbeat(timeout time.Duration, retries int) Option {
	return func(m *Manager) { m.timeout, m.retries = timeout, retries }
}

// WithPeers names the organisation's servers by address ("ip:port"), for queue names
// and trace.
func WithPeers(peers map[string]string) Option {
	return func(m *Manager) {
		for name, addr := range peers {
			m.names[addr] = name
		}
	}
}

// Open loads the shadow copies kept in dir by an earlier run.
func Open(dir string, opts ...Option) (*Manager, error) {
	d, err := lazydir.Open(dir, lazydir.SyncDir)
	if err != nil {
		return nil, fmt.Errorf("shadow %s: %w", dir, err)
	}
	m := &Manager{dir: d, clock: clock.Real{}, log: slog.Default(), timeout: 15 * time.Minute, retries: 3,
		names: map[string]string{}, recs: map[string]*Record{}, inc: map[string]string{}, contact: map[string]time.Time{},
		unasked: map[string]time.Time{}}
	for _, o := range opts {
		o(m)
	}
	if m.trace == nil {
		m.trace = trace.NewLog(nil)
	}
	recs, err := readRecords(dir)
	if err != nil {
		return nil, fmt.Errorf("shadow %s: %w", dir, err)
	}
	now := m.clock.Now()
	for id, r := range recs {
		m.recs[id] = r
		// A restart is no news of the primary: its silence counts from now.
		m.contact[r.Addr] = now
	}
	return m, nil
}

// Prepare learns the incarnation of the primaries at hosts that it does not know yet,
// before a message is relayed to one of them: an incarnation seen before the relay is
// never newer than the spool the message lands in, so a spool lost later is always
// noticed. A primary that does not answer is not shadowed, and not asked again for a
// heartbeat: a fail-over host that is down must not slow every relay.
func (m *Manager) Prepare(ctx context.Context, hosts []string) {
	for _, h := range hosts {
		now := m.clock.Now()
		m.mu.Lock()
		_, known := m.inc[h]
		failed, tried := m.unasked[h]
		m.mu.Unlock()
		if known || tried && now.Sub(failed) < m.timeout {
			continue
		}
		a, err := m.query(ctx, h, nil)
		m.mu.Lock()
		if err != nil {
			m.unasked[h] = now
		} else {
			delete(m.unasked, h)
			m.inc[h] = a.Incarnation
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Debug("no shadow redundancy with next hop", "addr", h, "err", err)
		}
	}
}

// Keep makes the shadow copy of m for rcpts, relayed to remote (a host of hosts) and
// acknowledged with reply. It returns once the copy is durable; a primary whose
// incarnation is unknown, or whose reply names no queue ID, is not shadowed.
func (m *Manager) Keep(ctx context.Context, msg *queue.Message, hosts []string, remote, reply string, rcpts []string, data []byte) error {
	id := QueuedID(reply)
	addr := addrOf(hosts, remote)
	m.mu.Lock()
	inc, known := m.inc[addr]
	m.mu.Unlock()
	if id == "" || !known {
		m.log.Info("relayed without a shadow copy", "msgid", msg.ID, "next_hop", remote, "reply", reply)
		return nil
	}
	now := m.clock.Now()
	r := &Record{Message: copyFor(msg, rcpts), Primary: m.nameOf(addr), Addr: addr, PrimaryID: id, Incarnation: inc, Kept: now}
	r.Message.ID = queue.NewID(now)
	r.Message.Queue = QueueName(r.Primary)
	r.Message.NextAttempt = now.Add(m.timeout)
	if err := m.put(r, data); err != nil {
		return err
	}
	m.mu.Lock()
	m.recs[r.Message.ID] = r
	m.contact[addr] = now // it just took the message
	m.mu.Unlock()
	return nil
}

// copyFor is msg as a new message to rcpts, as if never tried.
func copyFor(msg *queue.Message, rcpts []string) queue.Message {
	c := *msg
	want := map[string]bool{}
	for _, r := range rcpts {
		want[strings.ToLower(r)] = true
	}
	c.Recipients = nil
	for _, r := range msg.Recipients {
		if want[strings.ToLower(r.Addr)] {
			r.State, r.Reply, r.Attempts = queue.Pending, "", 0
			c.Recipients = append(c.Recipients, r)
		}
	}
	c.Attempts, c.Crashes, c.LastReply = 0, 0, ""
	return c
}

func addrOf(hosts []string, remote string) string {
	for _, h := range hosts {
		host, _, err := net.SplitHostPort(h)
		if err != nil {
			host = h
		}
		if strings.EqualFold(strings.Trim(host, "[]"), remote) {
			return h
		}
	}
	return remote
}

func (m *Manager) nameOf(addr string) string {
	if n, ok := m.names[addr]; ok {
		return n
	}
	return addr
}

// Run beats the heartbeat until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	next := m.clock.Now().Add(m.timeout)
	for {
		// The next beat is due at a fixed time, not a timeout from now, so a clock
		// stepped while a beat runs still finds the next one due.
		select {
		case <-ctx.Done():
			return
		case <-m.clock.After(next.Sub(m.clock.Now())):
		}
		m.Beat(ctx)
		next = next.Add(m.timeout)
		if now := m.clock.Now(); next.Before(now) {
			next = now
		}
	}
}

// Beat asks every primary holding shadowed messages about them: what it no longer
// holds is discarded; what it lost (a new incarnation), or everything when it has not
// answered for the heartbeat timeout times the retry count, is resubmitted.
func (m *Manager) Beat(ctx context.Context) {
	now := m.clock.Now()
	byAddr := map[string][]*Record{}
	m.mu.Lock()
	for _, r := range m.recs {
		byAddr[r.Addr] = append(byAddr[r.Addr], r)
	}
	// A primary nothing waits on is asked again before the next relay to it, rather
	// than trusted with an incarnation that may be long gone.
	for addr := range m.inc {
		if len(byAddr[addr]) == 0 {
			delete(m.inc, addr)
			delete(m.contact, addr)
		}
	}
	m.mu.Unlock()
	addrs := make([]string, 0, len(byAddr))
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, addr := range addrs {
		m.beatOne(ctx, now, addr, byAddr[addr])
	}
}

func (m *Manager) beatOne(ctx context.Context, now time.Time, addr string, recs []*Record) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].Message.ID < recs[j].Message.ID })
	for _, r := range recs {
		if m.discard > 0 && !now.Before(r.Kept.Add(m.discard)) {
			m.log.Warn("shadow copy discarded unconfirmed after the auto-discard interval", "msgid", r.Message.ID, "primary", r.Primary)
			m.drop(r)
		}
	}
	for i := 0; i < len(recs); i += maxIDs {
		batch := recs[i:min(i+maxIDs, len(recs))]
		ids := make([]string, len(batch))
		for j, r := range batch {
			ids[j] = r.PrimaryID
		}
		a, err := m.query(ctx, addr, ids)
		if err != nil {
			m.mu.Lock()
			since := m.contact[addr]
			m.mu.Unlock()
			silent := now.Sub(since)
			if silent < m.timeout*time.Duration(m.retries) {
				m.log.Warn("shadow heartbeat unanswered", "primary", m.nameOf(addr), "silent", silent, "err", err)
				return
			}
			for _, r := range batch {
				m.resubmitOne(ctx, r, fmt.Sprintf("%s has not answered for %s", r.Primary, silent))
			}
			continue
		}
		m.mu.Lock()
		m.contact[addr] = now
		m.inc[addr] = a.Incarnation
		m.mu.Unlock()
		for _, r := range batch {
			switch {
			case r.Incarnation != a.Incarnation:
				m.resubmitOne(ctx, r, fmt.Sprintf("%s came back with a new queue database (incarnation %s, was %s)", r.Primary, a.Incarnation, r.Incarnation))
			case a.Done[r.PrimaryID]:
				m.drop(r)
			}
		}
	}
}

// resubmitOne puts a shadow copy back in the queue, then forgets it: a crash in
// between delivers it twice, never not at all.
func (m *Manager) resubmitOne(ctx context.Context, r *Record, why string) {
	if m.resubmit == nil {
		return
	}
	data, err := os.ReadFile(m.path(r.Message.ID, ".eml"))
	if err != nil {
		m.log.Error("shadow copy unreadable; kept", "msgid", r.Message.ID, "err", err)
		return
	}
	msg := r.Message
	msg.Recipients = append([]queue.Recipient(nil), r.Message.Recipients...)
	msg.ID, msg.Queue, msg.NextAttempt = "", "", time.Time{}
	if err := m.resubmit(ctx, &msg, data); err != nil {
		m.log.Error("shadow resubmission failed; will retry", "msgid", r.Message.ID, "err", err)
		return
	}
	var rcpts []string
	for _, rc := range msg.Recipients {
		rcpts = append(rcpts, rc.Addr)
	}
	m.trace.Record(trace.Event{Time: m.clock.Now(), Type: trace.Resubmit, MessageID: r.Message.ID, HeaderID: r.Message.HeaderID,
		Server: m.server, Sender: r.Message.From, Recipients: rcpts, NextHop: r.Primary,
		Detail: fmt.Sprintf("shadow of %s on %s resubmitted as %s: %s", r.PrimaryID, r.Primary, msg.ID, why)})
	m.drop(r)
}

// Len is how many shadow copies are kept.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// Snapshot is the shadow copies as queued messages in their shadow queues, for views.
func (m *Manager) Snapshot() []queue.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]queue.Message, 0, len(m.recs))
	for _, r := range m.recs {
		c := r.Message
		c.Recipients = append([]queue.Recipient(nil), r.Message.Recipients...)
		out = append(out, c)
	}
	return out
}

// List reads the shadow copies kept in dir, as Snapshot shows them, for a reader
// outside the server (`mailflow queue`).
func List(dir string) ([]queue.Message, error) {
	recs, err := readRecords(dir)
	if err != nil {
		return nil, err
	}
	out := make([]queue.Message, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Message)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Manager) path(id, ext string) string { return filepath.Join(m.dir.Path(), id+ext) }

// put stores data, then the record, each fsynced, then the directory: a record exists
// only with its data.
func (m *Manager) put(r *Record, data []byte) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("shadow keep %s: %w", r.Message.ID, err)
	}
	if err := m.dir.Make(); err != nil {
		return fmt.Errorf("shadow keep %s: %w", r.Message.ID, err)
	}
	if err := lazydir.WriteFileSync(m.path(r.Message.ID, ".eml"), data); err != nil {
		return fmt.Errorf("shadow keep %s: %w", r.Message.ID, err)
	}
	if err := lazydir.WriteFileSync(m.path(r.Message.ID, ".json"), b); err != nil {
		return fmt.Errorf("shadow keep %s: %w", r.Message.ID, err)
	}
	if err := lazydir.SyncDir(m.dir.Path()); err != nil {
		return fmt.Errorf("shadow keep %s: %w", r.Message.ID, err)
	}
	return nil
}

// drop forgets a shadow copy: its record first, so a crash leaves at most stray data.
func (m *Manager) drop(r *Record) {
	m.mu.Lock()
	delete(m.recs, r.Message.ID)
	m.mu.Unlock()
	if err := os.Remove(m.path(r.Message.ID, ".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Error("shadow remove failed", "msgid", r.Message.ID, "err", err)
	}
	_ = os.Remove(m.path(r.Message.ID, ".eml"))
	_ = lazydir.SyncDir(m.dir.Path())
}

func readRecords(dir string) (map[string]*Record, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]*Record{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out[r.Message.ID] = &r
	}
	return out, nil
}
