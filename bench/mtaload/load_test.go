package mtaload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// relay is the smallest MTA there is: it answers 250 once it has the message, and
// sends it on to next afterwards, as a queueing MTA does.
type relay struct {
	next string
	srv  *smtp.Server
	wg   sync.WaitGroup
}

func startRelay(t *testing.T, next string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{next: next}
	r.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	r.srv.Domain = "relay.test"
	served := make(chan struct{})
	go func() { defer close(served); _ = r.srv.Serve(l) }()
	t.Cleanup(func() {
		_ = r.srv.Close()
		<-served
		r.wg.Wait()
	})
	return l.Addr().String()
}

type relaySession struct {
	r        *relay
	from, to string
}

func (s *relaySession) Reset()                                      {}
func (s *relaySession) Logout() error                               { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	from, to := s.from, s.to
	s.r.wg.Go(func() {
		c, err := smtp.Dial(s.r.next)
		if err != nil {
			return // the run reports the message as not delivered
		}
		defer c.Close()
		_ = c.SendMail(from, []string{to}, bytes.NewReader(b))
	})
	return nil
}

func startTestSink(t *testing.T, opts ...SinkOption) *Sink {
	t.Helper()
	sink, err := StartSink(context.Background(), "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sink.Close(); err != nil {
			t.Error(err)
		}
	})
	return sink
}

func TestRun(t *testing.T) {
	sink := startTestSink(t)
	addr := startRelay(t, sink.Addr())
	l := Load{Messages: 40, Size: 3000, Clients: 4}
	r, err := Run(context.Background(), addr, sink, l, WithDeliveryWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != l.Messages || r.Delivered != l.Messages || r.Failed != 0 || r.Duplicates != 0 {
		t.Errorf("accepted %d, delivered %d, failed %d (%v), duplicates %d; want %d delivered once each",
			r.Accepted, r.Delivered, r.Failed, r.FirstErr, r.Duplicates, l.Messages)
	}
	if r.P50 > r.P99 || r.DeliverSpan < r.P99 || r.AcceptedPerSec() <= 0 || r.DeliveredPerSec() <= 0 {
		t.Errorf("inconsistent figures: p50 %s, p99 %s, spans %s/%s, %.1f/%.1f per s",
			r.P50, r.P99, r.AcceptSpan, r.DeliverSpan, r.AcceptedPerSec(), r.DeliveredPerSec())
	}
}

// A message the sink never gets is reported, with the figures of the rest.
func TestRunUndelivered(t *testing.T) {
	sink := startTestSink(t)
	other := startTestSink(t) // the relay sends to the wrong sink
	addr := startRelay(t, other.Addr())
	r, err := Run(context.Background(), addr, sink, Load{Messages: 3, Size: 100, Clients: 1}, WithDeliveryWait(200*time.Millisecond))
	if !errors.Is(err, ErrUndelivered) {
		t.Fatalf("err = %v, want ErrUndelivered", err)
	}
	if r.Accepted != 3 || r.Lost() != 3 {
		t.Errorf("accepted %d, lost %d; want 3, 3", r.Accepted, r.Lost())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := other.waitFor(ctx, func() bool { return other.stray == 3 }); err != nil {
		t.Errorf("the other sink counted %d strays, want 3: %v", other.Strays(), err)
	}
}

func TestSubmitDeferred(t *testing.T) {
	sink := startTestSink(t, WithDeferAll(true))
	addr := startRelay(t, sink.Addr())
	sub, err := Submit(context.Background(), addr, Load{Messages: 10, Size: 500, Clients: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Count() != 10 || sub.Failed != 0 || sub.Last().Before(sub.Start) {
		t.Fatalf("accepted %d, failed %d (%v)", sub.Count(), sub.Failed, sub.FirstErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sink.WaitDeferred(ctx, 10); err != nil {
		t.Fatal(err)
	}
}

// Refusals count as failures, and the session goes on with the next message.
func TestSubmitRefused(t *testing.T) {
	sink := startTestSink(t, WithDeferAll(true))
	sub, err := Submit(context.Background(), sink.Addr(), Load{Messages: 5, Size: 500, Clients: 1})
	if err != nil {
		t.Fatal(err)
	}
	var refusal *smtp.SMTPError
	if sub.Failed != 5 || !errors.As(sub.FirstErr, &refusal) || refusal.Code != 451 {
		t.Errorf("failed %d, first error %v; want 5, a 451", sub.Failed, sub.FirstErr)
	}
	if got := sink.Deferred(); got != 5 {
		t.Errorf("sink deferred %d recipients, want 5", got)
	}
}

func TestMessageSize(t *testing.T) {
	body := filler(102400)
	for _, size := range []int{600, 10240, 102400} {
		m := message("r1", 7, size, body, newConfig(nil))
		if d := len(m) - size; d > 0 || d <= -len(fillerLine) {
			t.Errorf("size %d: message of %d bytes", size, len(m))
		}
		if !bytes.Contains(m, []byte(HeaderID+": r1.7\r\n")) {
			t.Errorf("size %d: no %s header", size, HeaderID)
		}
	}
}

func TestQuantile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.5, 5 * time.Millisecond},
	} {
		if got := Quantile(c.in, c.q); got != c.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", c.in, c.q, got, c.want)
		}
	}
}

func TestTreeMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Skip("no sleep to start:", err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	m, err := TreeMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.Procs < 2 || m.RSS <= 0 || m.PSS <= 0 {
		t.Errorf("memory of the test and its child: %+v", m)
	}
}
