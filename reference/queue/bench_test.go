package queue

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkSpoolPut measures the cost of making one 10 KiB message durable (two
// fsynced files and a directory fsync): the floor under every 250 after DATA.
func BenchmarkSpoolPut(b *testing.B) {
	sp, err := OpenSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 160)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &Message{ID: NewID(time.Now()), From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
		if err := sp.Put(m, data); err != nil {
			b.Fatal(err)
		}
	}
}

type deliverAll struct{}

func (deliverAll) Deliver(_ context.Context, _ *Message, rcpts []string, _ []byte) []Outcome {
	out := make([]Outcome, len(rcpts))
	for i, r := range rcpts {
		out[i] = Outcome{Rcpt: r, Status: StatusDelivered, Reply: "250 ok"}
	}
	return out
}

// BenchmarkQueueThroughput measures one message's whole life in the queue with fsync
// on, 32 sessions enqueueing at once: spooled, attempted (a deliverer that accepts at
// once), removed. What is left is the queue's own cost: its fsyncs and its lock.
func BenchmarkQueueThroughput(b *testing.B) { benchThroughput(b, 0) }

// BenchmarkQueueThroughputWith50kWaiting is BenchmarkQueueThroughput with 50,000
// messages already waiting for a retry a day away, as after a long outage of a next
// hop: what each arrival and each finished attempt costs the queue's scheduling.
func BenchmarkQueueThroughputWith50kWaiting(b *testing.B) { benchThroughput(b, 50000) }

func benchThroughput(b *testing.B, waiting int) {
	sp, err := OpenSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	q, err := New(sp, WithDeliverer(deliverAll{}))
	if err != nil {
		b.Fatal(err)
	}
	later := time.Now().Add(24 * time.Hour)
	q.mu.Lock()
	for i := 0; i < waiting; i++ {
		m := &Message{ID: NewID(time.Now()), From: "a@x.test", Received: time.Now(), NextAttempt: later,
			Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
		q.msgs[m.ID] = entry{m: m}
		q.schedule(m)
	}
	q.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	data := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 160)
	b.SetBytes(int64(len(data)))
	b.SetParallelism(16) // 32 senders on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := &Message{From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test"}}}
			if err := q.Enqueue(ctx, m, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	for q.Len() > waiting {
		runtime.Gosched()
	}
	b.StopTimer()
	cancel()
	<-done
}

// BenchmarkHeld measures what a queue keeps in memory for each message it holds after
// a restart on a spool of 20,000 deferred messages (the bench command's 100,000-message
// figure in miniature): heap-B/msg is the live heap over the messages held.
func BenchmarkHeld(b *testing.B) {
	const n = 20000
	dir := b.TempDir()
	sp, err := OpenSpool(dir)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	data := bytes.Repeat([]byte("x"), 1024)
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 32 {
				m := &Message{ID: NewID(now.Add(time.Duration(i))), HeaderID: "<0123456789abcdef@client.test>", From: "load@client.test",
					Received: now, NextAttempt: now.Add(time.Hour), Attempts: 1, Queue: "sink.test", LastReply: "451 4.3.0 later", Size: int64(len(data)),
					Recipients: []Recipient{{Addr: "rcpt@sink.test", State: Pending, Attempts: 1, Reply: "451 4.3.0 later"}}}
				if err := sp.Put(m, data); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := sp.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var perMsg float64
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		sp, err := OpenSpool(dir)
		if err != nil {
			b.Fatal(err)
		}
		q, err := New(sp)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if q.Len() != n {
			b.Fatalf("held %d, want %d", q.Len(), n)
		}
		perMsg = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(q)
		if err := sp.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perMsg, "heap-B/msg")
}
