package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/journal"
	"github.com/mailflow/mailflow/trace"
)

type scripted struct {
	mu    sync.Mutex
	calls int
	plan  []Status
}

func (s *scripted) Deliver(_ context.Context, _ *Message, rcpts []string, _ []byte) []Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.plan[min(s.calls, len(s.plan)-1)]
	s.calls++
	var out []Outcome
	for _, r := range rcpts {
		out = append(out, Outcome{Rcpt: r, Status: st, Reply: "451 4.3.0 later"})
	}
	return out
}

func (s *scripted) n() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling helper, not a timing assertion
	}
}

func TestQueueRetriesTemporaryFailureAfterInterval(t *testing.T) {
	tests := []struct {
		name      string
		plan      []Status
		wantCalls int
		wantLeft  int
		wantEvent trace.Type
	}{
		{"defer then deliver", []Status{StatusTemporary, StatusDelivered}, 2, 0, trace.Defer},
		{"permanent fails once", []Status{StatusPermanent}, 1, 0, trace.Fail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			sp, err := OpenSpool(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			d := &scripted{plan: tc.plan}
			log := trace.NewLog(nil)
			q, err := New(sp, WithClock(fc), WithDeliverer(d), WithRetryInterval(10*time.Minute), WithTrace(log))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { q.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			m := &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}
			if err := q.Enqueue(ctx, m, []byte("Subject: t\r\n\r\nhi\r\n")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "first attempt", func() bool { return d.n() >= 1 && len(log.Events()) >= 1 })
			if tc.wantCalls > 1 {
				fc.Advance(9 * time.Minute)
				if d.n() != 1 {
					t.Fatalf("retried before the interval: %d calls", d.n())
				}
				waitFor(t, "retry timer armed", func() bool { return fc.Pending() > 0 })
				fc.Advance(time.Minute)
				waitFor(t, "retry", func() bool { return d.n() == tc.wantCalls })
			}
			waitFor(t, "queue drained", func() bool { return q.Len() == tc.wantLeft })
			if ev := trace.OfType(log.Events(), tc.wantEvent, ""); len(ev) != 1 {
				t.Fatalf("%s events = %v", tc.wantEvent, log.Events())
			}
			left, _ := sp.List()
			if len(left) != 0 {
				t.Fatalf("spool still holds %d messages", len(left))
			}
		})
	}
}

func TestQueueReloadsSpoolAfterRestart(t *testing.T) {
	dir := t.TempDir()
	sp, _ := OpenSpool(dir)
	q, _ := New(sp)
	if err := q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	sp2, _ := OpenSpool(dir)
	q2, err := New(sp2)
	if err != nil {
		t.Fatal(err)
	}
	if q2.Len() != 1 {
		t.Fatalf("reloaded queue holds %d, want 1", q2.Len())
	}
}

func TestScheduleRetryAfter(t *testing.T) {
	s := Schedule{TransientInterval: 5 * time.Minute, TransientCount: 2, Interval: 10 * time.Minute}
	for attempts, want := range map[int]time.Duration{1: 5 * time.Minute, 2: 5 * time.Minute, 3: 10 * time.Minute, 50: 10 * time.Minute} {
		if got := s.RetryAfter(attempts); got != want {
			t.Errorf("RetryAfter(%d) = %s, want %s", attempts, got, want)
		}
	}
	if got := (Schedule{Interval: time.Minute, TransientCount: 3}).RetryAfter(1); got != time.Minute {
		t.Errorf("no transient interval: RetryAfter(1) = %s, want the interval", got)
	}
}

// harness runs a queue on a fake clock with d as its deliverer and records the
// notices it asks for.
type harness struct {
	q       *Queue
	sp      *Spool
	clock   *clock.Fake
	log     *trace.Log
	mu      sync.Mutex
	failed  [][]Outcome
	delayed [][]Outcome
	until   time.Time
}

func startQueue(t *testing.T, dir string, d Deliverer, opts ...Option) *harness {
	t.Helper()
	h := &harness{clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), log: trace.NewLog(nil)}
	sp, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	h.sp = sp
	opts = append([]Option{WithClock(h.clock), WithDeliverer(d), WithTrace(h.log),
		WithFailureHandler(func(_ *Message, _ []byte, f []Outcome) { h.mu.Lock(); h.failed = append(h.failed, f); h.mu.Unlock() }),
		WithDelayHandler(func(_ *Message, _ []byte, f []Outcome, until time.Time) {
			h.mu.Lock()
			h.delayed, h.until = append(h.delayed, f), until
			h.mu.Unlock()
		}),
	}, opts...)
	h.q, err = New(sp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func (h *harness) notices() (failed, delayed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.failed), len(h.delayed)
}

// step advances the clock once the queue has armed its timer.
func (h *harness) step(t *testing.T, d time.Duration) {
	t.Helper()
	waitFor(t, "a timer armed", func() bool { return h.clock.Pending() > 0 })
	h.clock.Advance(d)
}

func TestQueueRetriesWarnsAndExpires(t *testing.T) {
	d := &scripted{plan: []Status{StatusTemporary}}
	h := startQueue(t, t.TempDir(), d, WithSchedule(Schedule{
		TransientInterval: 5 * time.Minute, TransientCount: 2, Interval: 10 * time.Minute,
		DelayNotification: time.Hour, Expiration: 2 * time.Hour,
	}))
	if err := h.q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { return d.n() == 1 })
	h.step(t, 5*time.Minute)
	waitFor(t, "first transient retry", func() bool { return d.n() == 2 })
	h.step(t, 5*time.Minute)
	waitFor(t, "second transient retry", func() bool { return d.n() == 3 })
	h.step(t, 9*time.Minute)
	if d.n() != 3 {
		t.Fatalf("retried %d times within the 10-minute interval that follows the transient retries", d.n()-3)
	}
	h.step(t, time.Minute)
	waitFor(t, "retry after the interval", func() bool { return d.n() == 4 })
	if f, dl := h.notices(); f+dl != 0 {
		t.Fatalf("notices before the delay time: %d failed, %d delayed", f, dl)
	}

	h.step(t, 40*time.Minute) // one hour after arrival
	waitFor(t, "delay notice and the attempt due with it", func() bool { _, dl := h.notices(); return dl == 1 && d.n() == 5 })
	if want := h.clock.Now().Add(time.Hour); !h.until.Equal(want) {
		t.Errorf("delay notice retries until %s, want the expiry %s", h.until, want)
	}
	if got := h.delayed[0][0]; got.Rcpt != "b@y.test" || got.Reply != "451 4.3.0 later" {
		t.Errorf("delay notice outcome %+v, want b@y.test with the last reply", got)
	}
	h.step(t, 10*time.Minute)
	waitFor(t, "a retry after the notice", func() bool { return d.n() == 6 })
	if _, dl := h.notices(); dl != 1 {
		t.Fatalf("%d delay notices, want exactly one", dl)
	}

	h.step(t, 55*time.Minute) // past the expiry
	waitFor(t, "expiry", func() bool { return h.q.Len() == 0 })
	if f, _ := h.notices(); f != 1 || len(h.failed[0]) != 1 || !strings.Contains(h.failed[0][0].Reply, "4.4.7") {
		t.Fatalf("failure notices %+v, want one failing b@y.test with 4.4.7", h.failed)
	}
	if n := len(trace.OfType(h.log.Events(), trace.Expire, "")); n != 1 {
		t.Fatalf("%d EXPIRE events, want 1", n)
	}
	if left, _ := h.sp.List(); len(left) != 0 {
		t.Fatalf("spool still holds %d messages", len(left))
	}
}

// hopped defers every recipient into the queue of its next hop.
type hopped struct{ queue string }

func (h hopped) Deliver(_ context.Context, _ *Message, rcpts []string, _ []byte) []Outcome {
	var out []Outcome
	for _, r := range rcpts {
		out = append(out, Outcome{Rcpt: r, Status: StatusTemporary, Reply: "451 4.4.1 no answer", Queue: h.queue})
	}
	return out
}

func TestQueueNames(t *testing.T) {
	for _, want := range []string{"site:paris", QueueUnreachable} {
		t.Run(want, func(t *testing.T) {
			sp, _ := OpenSpool(t.TempDir())
			q, _ := New(sp, WithDeliverer(hopped{want}))
			if err := q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
				t.Fatal(err)
			}
			if got := q.Snapshot()[0].Queue; got != QueueSubmission {
				t.Fatalf("before its first attempt the message is in %q, want %q", got, QueueSubmission)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { q.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			waitFor(t, "the attempt", func() bool { return q.Snapshot()[0].Attempts == 1 })
			if got := q.Snapshot()[0].Queue; got != want {
				t.Fatalf("deferred message is in %q, want %q", got, want)
			}
		})
	}
}

type crashing struct{ scripted }

func (c *crashing) Deliver(ctx context.Context, m *Message, rcpts []string, data []byte) []Outcome {
	c.scripted.Deliver(ctx, m, rcpts, data)
	panic("categorizer bug")
}

func TestQueuePoison(t *testing.T) {
	t.Run("two crashed attempts", func(t *testing.T) {
		d := &crashing{scripted{plan: []Status{StatusTemporary}}}
		h := startQueue(t, t.TempDir(), d, WithRetryInterval(time.Minute))
		if err := h.q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "first crash", func() bool { return d.n() == 1 && h.q.Snapshot()[0].Crashes == 1 })
		h.step(t, time.Minute)
		waitFor(t, "poison", func() bool { return h.q.Snapshot()[0].Queue == QueuePoison })
		h.clock.Advance(72 * time.Hour)
		if d.n() != 2 {
			t.Fatalf("a poison message was attempted again: %d attempts", d.n())
		}
		if h.q.Len() != 1 {
			t.Fatal("a poison message must stay, never expire")
		}
	})
	t.Run("killed twice mid-attempt", func(t *testing.T) {
		dir := t.TempDir()
		sp, _ := OpenSpool(dir)
		m := &Message{ID: "m1", From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}, Crashes: PoisonThreshold}
		if err := sp.Put(m, []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = sp.Close() // the process that was killed
		d := &scripted{plan: []Status{StatusDelivered}}
		h := startQueue(t, dir, d)
		if got := h.q.Snapshot()[0].Queue; got != QueuePoison {
			t.Fatalf("after restart the message is in %q, want %q", got, QueuePoison)
		}
		h.clock.Advance(time.Hour)
		if d.n() != 0 {
			t.Fatal("a poison message was attempted after restart")
		}
		disk, _ := OpenSpool(dir)
		left, _ := disk.List()
		if len(left) != 1 || left[0].Queue != QueuePoison {
			t.Fatalf("spool %+v, want the message kept as poison", left)
		}
	})
}

func TestSpoolDirectoryComesWithTheFirstMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool", "HUB1")
	sp, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := sp.List(); err != nil || len(ms) != 0 {
		t.Fatalf("new spool lists %v, %v; want it empty", ms, err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spool directory made before any message: %v", err)
	}
	q, _ := New(sp)
	if err := q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	sp2, _ := OpenSpool(dir)
	if ms, err := sp2.List(); err != nil || len(ms) != 1 {
		t.Fatalf("reopened spool lists %v, %v; want the message", ms, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSpool(file); err == nil {
		t.Error("OpenSpool accepted a file")
	}
}

func TestRecipientWants(t *testing.T) {
	tests := []struct {
		notify                  []string
		success, failure, delay bool
	}{
		{nil, false, true, true}, // no NOTIFY: failures and delays (RFC 3461 §4.1)
		{[]string{"NEVER"}, false, false, false},
		{[]string{"SUCCESS"}, true, false, false},
		{[]string{"failure", "delay"}, false, true, true},
		{[]string{"SUCCESS", "FAILURE"}, true, true, false},
	}
	for _, tt := range tests {
		r := Recipient{Addr: "a@b.test", Notify: tt.notify}
		got := [3]bool{r.Wants(NotifySuccess), r.Wants(NotifyFailure), r.Wants(NotifyDelay)}
		if want := [3]bool{tt.success, tt.failure, tt.delay}; got != want {
			t.Errorf("NOTIFY=%v: success, failure, delay = %v, want %v", tt.notify, got, want)
		}
	}
}

// A delay notice due before the next retry wakes the queue for the notice alone; the
// retry must still come at its time.
func TestQueueRetriesAfterADelayNoticeOfItsOwn(t *testing.T) {
	d := &scripted{plan: []Status{StatusTemporary}}
	h := startQueue(t, t.TempDir(), d, WithSchedule(Schedule{
		TransientInterval: 10 * time.Minute, TransientCount: 6, Interval: 10 * time.Minute,
		DelayNotification: 3 * time.Minute, Expiration: time.Hour,
	}))
	if err := h.q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt", func() bool { return d.n() == 1 })
	h.step(t, 3*time.Minute)
	waitFor(t, "the delay notice", func() bool { _, dl := h.notices(); return dl == 1 })
	if d.n() != 1 {
		t.Fatalf("%d attempts with the delay notice, want the first alone", d.n())
	}
	h.step(t, 7*time.Minute)
	waitFor(t, "the retry after the notice", func() bool { return d.n() == 2 })
}

// TestPutLeavesNothingOnFailure: a message the spool could not store leaves nothing
// that a restart would read as half a message or count (SEC-010). The first segment's
// name is taken by a directory, so the journal cannot be written, as on a full disk.
func TestPutLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	sp, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{ID: "m1", From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
	blocker := filepath.Join(dir, "0000000000000001.seg")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(m, []byte("Subject: s\r\n\r\nbody\r\n")); err == nil {
		t.Fatal("Put succeeded with its journal unwritable")
	}
	if l, err := sp.List(); err != nil || len(l) != 0 {
		t.Errorf("List after a failed Put: %d messages, %v", len(l), err)
	}
	// Once the disk has room again, the same spool takes the message.
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(m, []byte("Subject: s\r\n\r\nbody\r\n")); err != nil {
		t.Fatalf("Put after the disk came back: %v", err)
	}
	_ = sp.Close()
	disk, _ := OpenSpool(dir)
	if l, err := disk.List(); err != nil || len(l) != 1 {
		t.Errorf("spool on disk after the retry: %d messages, %v; want 1", len(l), err)
	}
}

// TestAdmit: the spool limit counts the messages held, and frees their room when they
// leave the queue (SEC-010).
func TestAdmit(t *testing.T) {
	sp, err := OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	q, err := New(sp, WithSpoolLimit(100), WithClock(clock.NewFake(time.Unix(0, 0))))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Admit(100); err != nil {
		t.Fatalf("an empty queue refused a message of its limit: %v", err)
	}
	m := &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}
	if err := q.Enqueue(context.Background(), m, make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if err := q.Admit(41); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("Admit(41) with 60 of 100 held: %v, want ErrSpoolFull", err)
	}
	if err := q.Admit(40); err != nil {
		t.Fatalf("Admit(40) with 60 of 100 held: %v", err)
	}
	q2, err := New(sp, WithSpoolLimit(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := q2.Admit(41); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("after a restart the held message no longer counts: %v", err)
	}
}

// TestSpoolJournalShrinks: segments whose messages are done go, sparse ones are
// compacted into the head, and what is live comes back whole after a restart.
func TestSpoolJournalShrinks(t *testing.T) {
	dir := t.TempDir()
	sp, err := OpenSpool(dir, WithSegmentSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	body := func(i int) []byte {
		return []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("x", 1000)))
	}
	const n = 200
	for i := 0; i < n; i++ {
		m := &Message{ID: fmt.Sprintf("m%03d", i), From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
		if err := sp.Put(m, body(i)); err != nil {
			t.Fatal(err)
		}
		if i%50 != 7 { // m007, m057, m107, m157 stay, one in each stretch of segments
			if err := sp.Remove(m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := &Message{ID: "m057", From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Delivered}, {Addr: "c@y.test", State: Pending}}}
	if err := sp.Save(m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ { // more traffic, so the sparse segments are behind the head
		m := &Message{ID: fmt.Sprintf("z%03d", i), From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
		if err := sp.Put(m, body(i)); err != nil {
			t.Fatal(err)
		}
		_ = sp.Remove(m.ID)
	}
	segs, _ := journal.Segments(dir)
	if written := (n + 40) * 1100 / (16 << 10); len(segs) > written/2 {
		t.Errorf("%d segments left of about %d written, with 4 messages live", len(segs), written)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	again, _ := OpenSpool(dir)
	live, err := again.Recover()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range live {
		ids = append(ids, m.ID)
		i, _ := strconv.Atoi(m.ID[1:])
		if data, err := again.Data(m.ID); err != nil || !bytes.Equal(data, body(i)) {
			t.Errorf("%s: data %q, %v", m.ID, data, err)
		}
		if m.ID == "m057" && (len(m.Recipients) != 2 || m.Recipients[0].State != Delivered) {
			t.Errorf("m057 came back as %+v, not as last saved", m.Recipients)
		}
	}
	if fmt.Sprint(ids) != "[m007 m057 m107 m157]" {
		t.Errorf("live after restart: %v", ids)
	}
}

// recording delivers to the recipients in deliver and defers the rest, keeping a copy
// of the envelope each attempt was given.
type recording struct {
	mu      sync.Mutex
	deliver map[string]bool
	seen    []Message
}

func (r *recording) Deliver(_ context.Context, m *Message, rcpts []string, _ []byte) []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, *m.clone())
	var out []Outcome
	for _, rc := range rcpts {
		if r.deliver[rc] {
			out = append(out, Outcome{Rcpt: rc, Status: StatusDelivered, Reply: "250 2.0.0 ok"})
		} else {
			out = append(out, Outcome{Rcpt: rc, Status: StatusTemporary, Reply: "451 4.4.1 no answer", Queue: "mx.y.test"})
		}
	}
	return out
}

func (r *recording) attempts() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.seen...)
}

// A message waiting for its next attempt is held as its due time and size alone; the
// attempt reads the envelope back from the spool as the last attempt left it, and the
// queue views read it there too.
func TestWaitingMessageIsReadBackFromTheSpool(t *testing.T) {
	d := &recording{deliver: map[string]bool{"b@y.test": true}}
	h := startQueue(t, t.TempDir(), d, WithRetryInterval(10*time.Minute))
	m := &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}, {Addr: "c@y.test", Notify: []string{NotifyFailure}}}}
	if err := h.q.Enqueue(context.Background(), m, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt recorded", func() bool {
		h.q.mu.Lock()
		defer h.q.mu.Unlock()
		e, ok := h.q.msgs[m.ID]
		return ok && !h.q.busy[m.ID] && e.m == nil
	})
	if got := h.q.Snapshot(); len(got) != 1 || got[0].Attempts != 1 || got[0].Queue != "mx.y.test" ||
		got[0].Recipient("c@y.test").Reply != "451 4.4.1 no answer" || got[0].Recipient("b@y.test").State != Delivered {
		t.Fatalf("snapshot of the waiting message: %+v", got)
	}
	d.mu.Lock()
	d.deliver["c@y.test"] = true
	d.mu.Unlock()
	h.step(t, 10*time.Minute)
	waitFor(t, "the retry", func() bool { return h.q.Len() == 0 })
	seen := d.attempts()
	if len(seen) != 2 {
		t.Fatalf("%d attempts, want 2", len(seen))
	}
	again := seen[1]
	if again.ID != m.ID || again.Attempts != 1 || again.Queue != "mx.y.test" || again.Received.IsZero() {
		t.Errorf("retry got envelope %+v, want the one the first attempt left", again)
	}
	if r := again.Recipient("c@y.test"); r == nil || r.State != Pending || r.Attempts != 1 || len(r.Notify) != 1 {
		t.Errorf("retry's c@y.test: %+v", r)
	}
	if r := again.Recipient("b@y.test"); r == nil || r.State != Delivered {
		t.Errorf("retry's b@y.test: %+v, want delivered", r)
	}
}

// Envelope reads what Note appended a moment before, written or not.
func TestEnvelopeAfterNote(t *testing.T) {
	sp, err := OpenSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	m := &Message{ID: NewID(time.Now()), From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
	if err := sp.Put(m, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		c := m.clone()
		c.Attempts = i
		if err := sp.Note(c); err != nil {
			t.Fatal(err)
		}
		got, err := sp.Envelope(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attempts != i {
			t.Fatalf("envelope after note %d says %d attempts", i, got.Attempts)
		}
	}
	if _, err := sp.Envelope("nosuch"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("envelope of an unknown message: %v", err)
	}
}

func TestSegmentSizeBounds(t *testing.T) {
	for _, n := range []int64{0, -1, maxSegment + 1} {
		if _, err := OpenSpool(t.TempDir(), WithSegmentSize(n)); err == nil {
			t.Errorf("segment size %d taken", n)
		}
	}
}

// TestRetryNow: a message waiting in a named queue is attempted again at once when
// its route changes; one in another queue keeps its retry time.
func TestRetryNow(t *testing.T) {
	d := &scripted{plan: []Status{StatusTemporary, StatusDelivered}}
	h := startQueue(t, t.TempDir(), d, WithRetryInterval(10*time.Minute))
	if err := h.q.Enqueue(context.Background(), &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first attempt deferred", func() bool {
		return d.n() == 1 && len(trace.OfType(h.log.Events(), trace.Defer, "")) == 1 && h.q.Busy() == 0
	})
	if n := h.q.RetryNow("rgc:elsewhere"); n != 0 {
		t.Fatalf("RetryNow(another queue) = %d, want 0", n)
	}
	if n := h.q.RetryNow("Retry"); n != 1 {
		t.Fatalf("RetryNow(Retry) = %d, want 1", n)
	}
	waitFor(t, "second attempt without the clock moving", func() bool { return d.n() == 2 })
	waitFor(t, "delivered", func() bool { return h.q.Len() == 0 })
}
