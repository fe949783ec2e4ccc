package queue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mailflow/mailflow/fixtures/clock"
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
	retry     time.Duration
	log       *slog.Logger
	onFail    FailureHandler

	mu      sync.Mutex
	msgs    map[string]*Message
	busy    map[string]bool
	wake    chan struct{}
	running sync.WaitGroup
}

// Option configures a Queue.
type Option func(*Queue)

func WithClock(c clock.Clock) Option           { return func(q *Queue) { q.clock = c } }
func WithTrace(r trace.Recorder) Option        { return func(q *Queue) { q.trace = r } }
func WithServer(name string) Option            { return func(q *Queue) { q.server = name } }
func WithRetryInterval(d time.Duration) Option { return func(q *Queue) { q.retry = d } }
func WithLogger(l *slog.Logger) Option         { return func(q *Queue) { q.log = l } }

// FailureHandler is told, after the queue has recorded it, which recipients of m failed
// permanently in an attempt; the role sends the DSN (the queue knows no message formats).
type FailureHandler func(m *Message, data []byte, failed []Outcome)

func WithFailureHandler(h FailureHandler) Option { return func(q *Queue) { q.onFail = h } }

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
		spool: spool, clock: clock.Real{}, retry: 10 * time.Minute, log: slog.Default(),
		msgs: map[string]*Message{}, busy: map[string]bool{}, wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(q)
	}
	if q.trace == nil {
		q.trace = nopRecorder()
	}
	existing, err := spool.List()
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	for _, m := range existing {
		q.msgs[m.ID] = m
	}
	return q, nil
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
	for i := range m.Recipients {
		if m.Recipients[i].State == "" {
			m.Recipients[i].State = Pending
		}
	}
	if err := q.spool.Put(m, data); err != nil {
		return err
	}
	q.mu.Lock()
	q.msgs[m.ID] = m
	q.mu.Unlock()
	q.poke()
	return nil
}

// Len is the number of messages held.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Snapshot copies the envelopes held, for suites and `mailflow` queue views.
func (q *Queue) Snapshot() []Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Message, 0, len(q.msgs))
	for _, m := range q.msgs {
		c := *m
		c.Recipients = append([]Recipient(nil), m.Recipients...)
		out = append(out, c)
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
// attempt time (zero when nothing waits).
func (q *Queue) dispatchDue(ctx context.Context) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	var next time.Time
	for id, m := range q.msgs {
		if q.busy[id] {
			continue
		}
		if m.NextAttempt.After(now) {
			if next.IsZero() || m.NextAttempt.Before(next) {
				next = m.NextAttempt
			}
			continue
		}
		q.busy[id] = true
		q.running.Add(1)
		go q.attempt(ctx, m)
	}
	return next
}

func (q *Queue) attempt(ctx context.Context, m *Message) {
	defer q.running.Done()
	defer q.poke()
	d := q.deliverer // set at construction, never changed
	data, err := q.spool.Data(m.ID)
	var outcomes []Outcome
	rcpts := m.Pending()
	switch {
	case err != nil:
		q.log.Error("spool read failed; will retry", "msgid", m.ID, "err", err)
	case d == nil:
		q.log.Error("no deliverer; will retry", "msgid", m.ID)
	default:
		outcomes = d.Deliver(ctx, m, rcpts, data)
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt's results may be partial; the spool keeps the
		// message as it was and a restart retries it.
		q.mu.Lock()
		delete(q.busy, m.ID)
		q.mu.Unlock()
		return
	}
	if failed := q.apply(m, outcomes); len(failed) > 0 && q.onFail != nil {
		q.onFail(m, data, failed)
	}
}

// apply records an attempt's outcomes and returns the permanent failures.
func (q *Queue) apply(m *Message, outcomes []Outcome) []Outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer delete(q.busy, m.ID)
	now := q.clock.Now()
	got := map[string]Outcome{}
	for _, o := range outcomes {
		got[o.Rcpt] = o
	}
	var deferred, failed []string
	var deferReply, failReply string
	var failures []Outcome
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
		r.Reply = o.Reply
		switch o.Status {
		case StatusDelivered:
			r.State = Delivered
		case StatusPermanent:
			r.State = Failed
			failed = append(failed, r.Addr)
			failReply = o.Reply
			failures = append(failures, o)
		default:
			deferred = append(deferred, r.Addr)
			deferReply = o.Reply
		}
	}
	m.Attempts++
	base := trace.Event{Time: now, MessageID: m.ID, HeaderID: m.HeaderID, Server: q.server, Sender: m.From}
	if len(failed) > 0 {
		e := base
		e.Type, e.Recipients, e.Reply = trace.Fail, failed, failReply
		q.trace.Record(e)
	}
	if len(deferred) > 0 {
		m.NextAttempt = now.Add(q.retry)
		m.LastReply = deferReply
		e := base
		e.Type, e.Recipients, e.Reply = trace.Defer, deferred, deferReply
		e.Detail = "retry at " + m.NextAttempt.UTC().Format(time.RFC3339)
		q.trace.Record(e)
		if err := q.spool.Save(m); err != nil {
			q.log.Error("spool save failed", "msgid", m.ID, "err", err)
		}
		return failures
	}
	delete(q.msgs, m.ID)
	if err := q.spool.Remove(m.ID); err != nil {
		q.log.Error("spool remove failed", "msgid", m.ID, "err", err)
	}
	return failures
}
