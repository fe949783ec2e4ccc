package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/clock"
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
	deadline := time.Now().Add(5 * time.Second)
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
