package queue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/trace"
)

// Status is the result of one delivery attempt for one recipient.
type Status int

const (
	StatusDelivered Status = iota
	StatusTemporary
	StatusPermanent
)

// Outcome is what a Deliverer reports for one recipient.
type Outcome struct {
	Rcpt   string
	Status Status
	// Reply is the next hop's reply (or a local reason) for trace and DSN.
	Reply     string
	RemoteMTA string
	// Queue names the delivery queue a deferred recipient waits in: its next hop, or
	// QueueUnreachable (QUEUE-011).
	Queue string
}

// Schedule is when a server retries, warns and gives up (QUEUE-004, QUEUE-005,
// QUEUE-006): the first TransientCount retries come TransientInterval apart, the later
// ones Interval apart (Exchange's TransientFailureRetryInterval/Count and
// OutboundConnectionFailureRetryInterval). A delay DSN goes out once DelayNotification
// after arrival, and the message expires Expiration after arrival; zero turns either
// off.
type Schedule struct {
	TransientInterval time.Duration
	TransientCount    int
	Interval          time.Duration
	DelayNotification time.Duration
	Expiration        time.Duration
}

// RetryAfter is the wait after the attempt numbered attempts (from 1).
func (s Schedule) RetryAfter(attempts int) time.Duration {
	if attempts <= s.TransientCount && s.TransientInterval > 0 {
		return s.TransientInterval
	}
	return s.Interval
}

// Deliverer tries to move a message on; it returns one Outcome per recipient it was given.
type Deliverer interface {
	Deliver(ctx context.Context, m *Message, rcpts []string, data []byte) []Outcome
}

// Queue runs deliveries for the messages of one spool.
type Queue struct {
	spool     *Spool
	deliverer Deliverer
	clock     clock.Clock
	trace     trace.Recorder
	server    string
	sched     Schedule
	log       *slog.Logger
	onFail    FailureHandler
	onDelay   DelayHandler
	poison    int
	limit     int64 // octets the queue takes before Admit refuses; 0 none

	mu      sync.Mutex
	held    int64 // octets of the messages in msgs
	fresh   int64 // octets of the data kept in memory for first attempts
	msgs    map[string]entry
	busy    map[string]bool
	due     dueHeap // when each message next needs the queue; see schedule
	wake    chan struct{}
	running sync.WaitGroup
}

// entry is what the queue keeps in memory of a message it holds. A message that waits
// for its next attempt (after a deferral, a restart, or in Poison) keeps only when it
// is due and its size: its envelope is read back from the spool when it is due, so a
// queue of 100,000 deferred messages costs a few dozen octets each, not their
// envelopes. A message just enqueued, or in an attempt, has its envelope here.
type entry struct {
	m    *Message // nil while the message waits
	due  int64    // dueAt as Unix nanoseconds; never for a message in Poison
	size int64
}

// never is the due time of a message no timer takes up (Poison).
const never = math.MinInt64

// Option configures a Queue.
type Option func(*Queue)

func WithClock(c clock.Clock) Option    { return func(q *Queue) { q.clock = c } }
func WithTrace(r trace.Recorder) Option { return func(q *Queue) { q.trace = r } }
func WithServer(name string) Option     { return func(q *Queue) { q.server = name } }
func WithRetryInterval(d time.Duration) Option {
	return func(q *Queue) { q.sched.Interval, q.sched.TransientInterval = d, d }
}

// WithPoisonThreshold sets how many attempts that never finished make a message
// poison (default PoisonThreshold); 0 never does, for a server killed from outside on
// purpose, whose interrupted attempts say nothing about the message.
func WithPoisonThreshold(n int) Option { return func(q *Queue) { q.poison = n } }

// WithSchedule sets the retry, delay-notification and expiry timers.
func WithSchedule(s Schedule) Option { return func(q *Queue) { q.sched = s } }

// WithSpoolLimit makes Admit refuse messages while the queue holds n octets (SEC-010).
func WithSpoolLimit(n int64) Option { return func(q *Queue) { q.limit = n } }

// ErrSpoolFull is Admit's refusal: the spool limit is reached.
var ErrSpoolFull = errors.New("queue: spool limit reached")

// Admit says whether a message of n octets may be taken now. It is asked before
// Enqueue by the receive connectors only: DSNs and the Hub's own resubmissions are
// always taken, so back pressure never loses a message the queue already holds.
func (q *Queue) Admit(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.limit > 0 && q.held+int64(n) > q.limit {
		return ErrSpoolFull
	}
	return nil
}
func WithLogger(l *slog.Logger) Option { return func(q *Queue) { q.log = l } }

// FailureHandler is told, after the queue has recorded it, which recipients of m failed
// permanently in an attempt; the role sends the DSN (the queue knows no message formats).
type FailureHandler func(m *Message, data []byte, failed []Outcome)

func WithFailureHandler(h FailureHandler) Option { return func(q *Queue) { q.onFail = h } }

// DelayHandler is told once, when the delay-notification time has passed, which
// recipients of m are still waiting and until when they will be retried; the role
// sends the delay DSN.
type DelayHandler func(m *Message, data []byte, delayed []Outcome, until time.Time)

func WithDelayHandler(h DelayHandler) Option { return func(q *Queue) { q.onDelay = h } }

func WithDeliverer(d Deliverer) Option { return func(q *Queue) { q.deliverer = d } }
func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
func nopRecorder() trace.Recorder { return trace.NewLog(nil) }

// New opens the queue over spool and loads what a previous run left in it.
func New(spool *Spool, opts ...Option) (*Queue, error) {
	q := &Queue{
		spool: spool, clock: clock.Real{}, sched: Schedule{Interval: 10 * time.Minute}, log: slog.Default(), poison: PoisonThreshold,
		msgs: map[string]entry{}, busy: map[string]bool{}, wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(q)
	}
	if q.trace == nil {
		q.trace = nopRecorder()
	}
	existing, err := spool.Recover()
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for _, m := range existing {
		if q.isPoison(m) && m.Queue != QueuePoison {
			// Its attempts died with the process twice: never again automatically.
			m.Queue = QueuePoison
			if err := spool.Save(m); err != nil {
				return nil, fmt.Errorf("queue: %w", err)
			}
			q.log.Error("message is poison: two attempts did not finish", "msgid", m.ID, "server", q.server)
		}
		q.msgs[m.ID] = entry{size: m.Size}
		q.held += m.Size
		q.schedule(m) // and then only its entry is kept: the spool has the rest
	}
	return q, nil
}

// dueItem says message id needs the queue at at (Unix nanoseconds).
type dueItem struct {
	at int64
	id string
}

// dueHeap orders due items earliest first (container/heap).
type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// schedule records, under q.mu, when m next needs the queue, and lets its envelope go
// until then: m's entry keeps only the time and the size. Every change to what dueAt
// reads schedules anew; the heap items it leaves behind are stale and skipped, so
// dispatch looks only at what is due rather than at every message held, which after a
// long outage of a next hop is many. Whatever m's envelope says by then must have been
// handed to the spool (Put, Save or Note), which is where the next attempt reads it.
func (q *Queue) schedule(m *Message) {
	e := q.msgs[m.ID]
	e.m = nil
	m.data = nil
	if m.Queue == QueuePoison {
		e.due = never
	} else {
		e.due = q.dueAt(m).UnixNano()
		heap.Push(&q.due, dueItem{at: e.due, id: m.ID})
	}
	q.msgs[m.ID] = e
}

// Enqueue makes m durable and schedules it for delivery now. It returns only after the
// spool has fsynced the message.
func (q *Queue) Enqueue(ctx context.Context, m *Message, data []byte) error {
	now := q.clock.Now()
	if m.ID == "" {
		m.ID = NewID(now)
	}
	if m.Received.IsZero() {
		m.Received = now
	}
	m.NextAttempt = now
	if m.Queue == "" {
		m.Queue = QueueSubmission
	}
	m.From = intern(m.From)
	for i := range m.Recipients {
		if m.Recipients[i].State == "" {
			m.Recipients[i].State = Pending
		}
		m.Recipients[i].Addr = intern(m.Recipients[i].Addr)
	}
	// The first attempt follows at once: the envelope counts it as under way from the
	// start, which spares that attempt an envelope write of its own.
	m.Crashes++
	m.fresh = true
	m.Size = int64(len(data))
	if err := q.spool.Put(m, data); err != nil {
		return err
	}
	q.mu.Lock()
	// The first attempt delivers from these octets rather than read them back, while
	// the fresh messages held so stay within a bound (no body in memory otherwise).
	keep := q.fresh+m.Size <= maxFreshBytes
	if keep {
		q.fresh += m.Size
	}
	q.held += m.Size
	due := q.dueAt(m).UnixNano()
	heap.Push(&q.due, dueItem{at: due, id: m.ID})
	// Its envelope stays in memory for the first attempt, which starts at once.
	q.msgs[m.ID] = entry{m: m, due: due, size: m.Size}
	if keep {
		m.data = data
	}
	q.mu.Unlock()
	q.poke()
	return nil
}

// maxFreshBytes bounds the data a queue keeps in memory for first attempts.
const maxFreshBytes = 64 << 20

// SpoolStats are the spool journal's counters (fsyncs, batches) since it opened.
func (q *Queue) SpoolStats() SpoolStats { return q.spool.Stats() }

// Close makes what the queue appended to its spool durable and closes the spool; call
// it after Run has returned.
func (q *Queue) Close() error { return q.spool.Close() }

// Len is the number of messages held.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Busy is how many messages are in a delivery attempt now: a harness that steps a
// fake clock waits for none before the next step.
func (q *Queue) Busy() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.busy)
}

// Snapshot copies the envelopes held, for suites and `mailflow` queue views: those in
// memory as they are, those of waiting messages as the spool has them.
func (q *Queue) Snapshot() []Message {
	q.mu.Lock()
	out := make([]Message, 0, len(q.msgs))
	var waiting []string
	for id, e := range q.msgs {
		if e.m == nil {
			waiting = append(waiting, id)
			continue
		}
		c := *e.m
		c.Recipients = append([]Recipient(nil), e.m.Recipients...)
		c.data = nil
		out = append(out, c)
	}
	q.mu.Unlock()
	for _, id := range waiting {
		m, err := q.spool.Envelope(id)
		if err != nil {
			continue // done meanwhile
		}
		out = append(out, *m)
	}
	return out
}

// RetryNow makes the messages that wait in one of the named delivery queues due now,
// as their route changed: a Hub that learns a routing group connector is down or up
// again routes what waits for it afresh at once rather than at each message's next
// retry (ROUTE-020). It returns how many it made due.
func (q *Queue) RetryNow(queues ...string) int {
	q.mu.Lock()
	var waiting []string
	for id, e := range q.msgs {
		if e.m == nil && e.due != never && !q.busy[id] {
			waiting = append(waiting, id)
		}
	}
	q.mu.Unlock()
	n := 0
	for _, id := range waiting {
		// Claimed as an attempt is, so no attempt starts while its envelope changes.
		q.mu.Lock()
		if e, ok := q.msgs[id]; !ok || e.m != nil || q.busy[id] {
			q.mu.Unlock()
			continue
		}
		q.busy[id] = true
		q.mu.Unlock()
		m, err := q.spool.Envelope(id)
		now := q.clock.Now()
		changed := false
		if err == nil && slices.Contains(queues, m.Queue) && m.NextAttempt.After(now) {
			m.NextAttempt = now
			if err := q.spool.Save(m.clone()); err != nil {
				q.log.Error("spool save failed; the message keeps its retry time", "msgid", id, "err", err)
			} else {
				changed = true
				n++
			}
		}
		q.mu.Lock()
		delete(q.busy, id)
		if _, ok := q.msgs[id]; ok && changed {
			q.schedule(m)
		}
		q.mu.Unlock()
	}
	if n > 0 {
		q.poke()
	}
	return n
}

// IDs lists the IDs of the messages held.
func (q *Queue) IDs() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.msgs))
	for id := range q.msgs {
		out = append(out, id)
	}
	return out
}

// Run delivers due messages until ctx ends; it waits for attempts in flight to finish.
func (q *Queue) Run(ctx context.Context) {
	defer q.running.Wait()
	for {
		next := q.dispatchDue(ctx)
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = q.clock.After(next.Sub(q.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer:
		}
	}
}

// dispatchDue starts an attempt for each due message and returns the earliest future
// time something is due (zero when nothing waits): an attempt, a delay notice or an
// expiry.
func (q *Queue) dispatchDue(ctx context.Context) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now().UnixNano()
	for q.due.Len() > 0 {
		it := q.due[0]
		if it.at > now {
			return time.Unix(0, it.at)
		}
		heap.Pop(&q.due)
		e, ok := q.msgs[it.id]
		if !ok || q.busy[it.id] || e.due != it.at {
			continue // gone, in an attempt (which schedules it when done), or stale
		}
		q.busy[it.id] = true
		q.running.Add(1)
		go q.attempt(ctx, it.id, e.m)
	}
	return time.Time{}
}

// dueAt is when m next needs the queue: its next attempt, or sooner its delay notice
// or its expiry.
func (q *Queue) dueAt(m *Message) time.Time {
	at := m.NextAttempt
	if t, ok := q.delayAt(m); ok && t.Before(at) {
		at = t
	}
	if t, ok := q.expiresAt(m); ok && t.Before(at) {
		at = t
	}
	return at
}

func (q *Queue) delayAt(m *Message) (time.Time, bool) {
	if q.sched.DelayNotification <= 0 || m.DelayNotified || m.From == "" {
		return time.Time{}, false
	}
	return m.Received.Add(q.sched.DelayNotification), true
}

func (q *Queue) expiresAt(m *Message) (time.Time, bool) {
	if q.sched.Expiration <= 0 {
		return time.Time{}, false
	}
	return m.Received.Add(q.sched.Expiration), true
}

// attempt takes message id through one attempt; m is its envelope when the queue
// kept it (a message just enqueued), nil when it is read back from the spool.
func (q *Queue) attempt(ctx context.Context, id string, m *Message) {
	defer q.running.Done()
	defer q.poke()
	if m == nil {
		var err error
		if m, err = q.spool.Envelope(id); err != nil {
			q.log.Error("spool read failed; will retry", "msgid", id, "err", err)
			q.later(id)
			return
		}
	}
	q.mu.Lock()
	e := q.msgs[id]
	e.m = m
	q.msgs[id] = e
	data := m.data
	if data != nil {
		m.data = nil
		q.fresh -= m.Size
	}
	q.mu.Unlock()
	var err error
	if data == nil {
		data, err = q.spool.Data(m.ID)
	}
	if err != nil {
		q.log.Error("spool read failed; will retry", "msgid", m.ID, "err", err)
		q.apply(m, nil, false)
		return
	}
	now := q.clock.Now()
	if t, ok := q.expiresAt(m); ok && !now.Before(t) {
		q.expire(m, data)
		return
	}
	if t, ok := q.delayAt(m); ok && !now.Before(t) {
		q.notifyDelay(m, data)
	}
	if m.NextAttempt.After(now) {
		q.release(m)
		return
	}
	// Say durably that an attempt is under way: if the process dies in it, the count
	// survives, and a message that kills the process twice is poison, not a crash loop.
	// A message just enqueued was spooled saying so already.
	q.mu.Lock()
	var env *Message
	if m.fresh {
		m.fresh = false
	} else {
		m.Crashes++
		env = m.clone()
	}
	q.mu.Unlock()
	if env != nil {
		if err := q.spool.Save(env); err != nil {
			q.log.Error("spool save failed; will retry", "msgid", m.ID, "err", err)
		}
	}
	outcomes, ok := q.deliver(ctx, m, data)
	if ctx.Err() != nil {
		// Shutting down: the attempt's results may be partial; the spool keeps the
		// message as it was and a restart retries it.
		q.release(m)
		return
	}
	// The failure notices are queued before the failures are recorded: a crash in
	// between repeats a notice rather than loses one.
	var failed []Outcome
	for _, o := range outcomes {
		if o.Status == StatusPermanent {
			failed = append(failed, o)
		}
	}
	if len(failed) > 0 && q.onFail != nil {
		q.onFail(m, data, failed)
	}
	q.apply(m, outcomes, ok)
}

// deliver runs the deliverer; a panic in it is an attempt that did not finish.
func (q *Queue) deliver(ctx context.Context, m *Message, data []byte) (out []Outcome, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			q.log.Error("delivery attempt crashed", "msgid", m.ID, "panic", r)
			out, ok = nil, false
		}
	}()
	if q.deliverer == nil {
		q.log.Error("no deliverer; will retry", "msgid", m.ID)
		return nil, true
	}
	return q.deliverer.Deliver(ctx, m, m.Pending(), data), true
}

func (q *Queue) isPoison(m *Message) bool { return q.poison > 0 && m.Crashes >= q.poison }

func (q *Queue) release(m *Message) {
	q.mu.Lock()
	delete(q.busy, m.ID)
	q.schedule(m)
	q.mu.Unlock()
}

// later gives message id, whose envelope could not be read, another try after the
// retry interval.
func (q *Queue) later(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.busy, id)
	e, ok := q.msgs[id]
	if !ok {
		return
	}
	e.due = q.clock.Now().Add(q.sched.RetryAfter(1)).UnixNano()
	heap.Push(&q.due, dueItem{at: e.due, id: id})
	q.msgs[id] = e
}

// expire gives up on m's pending recipients (QUEUE-005): one failed DSN for them,
// status 4.4.7 as Exchange's QUEUE.Expired, and the message leaves the queue.
func (q *Queue) expire(m *Message, data []byte) {
	var failed []Outcome
	for _, r := range m.Recipients {
		if r.State == Pending {
			reply := "550 4.4.7 Message expired (QUEUE.Expired)"
			if r.Reply != "" {
				reply += "; last error: " + r.Reply
			}
			failed = append(failed, Outcome{Rcpt: r.Addr, Status: StatusPermanent, Reply: reply})
		}
	}
	q.trace.Record(trace.Event{Time: q.clock.Now(), Type: trace.Expire, MessageID: m.ID, HeaderID: m.HeaderID,
		Server: q.server, Sender: m.From, Recipients: m.Pending(), Detail: "expired after " + q.sched.Expiration.String()})
	if len(failed) > 0 && q.onFail != nil {
		q.onFail(m, data, failed)
	}
	q.apply(m, failed, true)
}

// notifyDelay sends the one delay notice for m's pending recipients (QUEUE-006) and
// records that it went.
func (q *Queue) notifyDelay(m *Message, data []byte) {
	var delayed []Outcome
	for _, r := range m.Recipients {
		if r.State == Pending {
			delayed = append(delayed, Outcome{Rcpt: r.Addr, Status: StatusTemporary, Reply: r.Reply})
		}
	}
	until, _ := q.expiresAt(m)
	if len(delayed) > 0 && q.onDelay != nil {
		q.onDelay(m, data, delayed, until)
	}
	q.mu.Lock()
	m.DelayNotified = true
	env := m.clone()
	q.mu.Unlock()
	if err := q.spool.Note(env); err != nil {
		q.log.Error("spool save failed", "msgid", m.ID, "err", err)
	}
}

// apply records an attempt's outcomes. finished is false for an attempt that did not
// finish (its deliverer panicked): nothing is known of its recipients, and the crash
// count it left decides whether the message is poison. The envelope is written out
// of the lock: the message is busy until then, so nothing else touches it, and the
// other attempts need not wait for this one's fsync.
func (q *Queue) apply(m *Message, outcomes []Outcome, finished bool) {
	q.mu.Lock()
	done := q.record(m, outcomes, finished)
	env := m.clone()
	q.mu.Unlock()
	var err error
	if done {
		err = q.spool.Remove(m.ID)
	} else {
		// Appended, not waited for: a crash before the next fsync repeats the
		// attempt's deliveries (a duplicate), never loses a recipient.
		err = q.spool.Note(env)
	}
	if err != nil {
		q.log.Error("spool write failed", "msgid", m.ID, "err", err)
	}
	q.mu.Lock()
	if done {
		q.held -= q.msgs[m.ID].size
		delete(q.msgs, m.ID)
	} else {
		q.schedule(m)
	}
	delete(q.busy, m.ID)
	q.mu.Unlock()
}

// clone copies an envelope for writing out of the lock.
func (m *Message) clone() *Message {
	c := *m
	c.Recipients = append([]Recipient(nil), m.Recipients...)
	return &c
}

// record applies outcomes to m, under q.mu, and says whether m is done with.
func (q *Queue) record(m *Message, outcomes []Outcome, finished bool) bool {
	now := q.clock.Now()
	if !finished {
		if q.isPoison(m) {
			m.Queue = QueuePoison
		}
		m.NextAttempt = now.Add(q.sched.RetryAfter(m.Attempts + 1))
		return false
	}
	m.Crashes = 0
	got := map[string]Outcome{}
	for _, o := range outcomes {
		got[o.Rcpt] = o
	}
	var deferred, failed []string
	var deferReply, failReply, queueName string
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.State != Pending {
			continue
		}
		o, ok := got[r.Addr]
		if !ok {
			o = Outcome{Rcpt: r.Addr, Status: StatusTemporary, Reply: "451 4.4.0 no delivery attempt was made"}
		}
		r.Attempts++
		r.Reply = intern(o.Reply)
		switch o.Status {
		case StatusDelivered:
			r.State = Delivered
		case StatusPermanent:
			r.State = Failed
			failed = append(failed, r.Addr)
			failReply = o.Reply
		default:
			deferred = append(deferred, r.Addr)
			deferReply = o.Reply
			if queueName == "" {
				queueName = o.Queue
			}
		}
	}
	m.Attempts++
	base := trace.Event{Time: now, MessageID: m.ID, HeaderID: m.HeaderID, Server: q.server, Sender: m.From}
	if len(failed) > 0 {
		e := base
		e.Type, e.Recipients, e.Reply = trace.Fail, failed, failReply
		q.trace.Record(e)
	}
	if len(deferred) == 0 {
		return true
	}
	m.NextAttempt = now.Add(q.sched.RetryAfter(m.Attempts))
	m.LastReply = intern(deferReply)
	m.Queue = intern(queueName)
	if m.Queue == "" {
		m.Queue = "Retry"
	}
	e := base
	e.Type, e.Recipients, e.Reply = trace.Defer, deferred, deferReply
	e.Detail = "retry at " + m.NextAttempt.UTC().Format(time.RFC3339) + " in queue " + m.Queue
	q.trace.Record(e)
	return false
}
