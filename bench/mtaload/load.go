package mtaload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Load is what one run sends: Messages messages of about Size bytes each, from Clients
// concurrent SMTP sessions.
type Load struct {
	Messages int
	Size     int
	Clients  int
}

// Option configures a run.
type Option func(*config)

type config struct {
	from, to, helo string
	wait           time.Duration
	dialTimeout    time.Duration
}

// WithEnvelope sets the reverse-path and the one recipient of every message.
func WithEnvelope(from, to string) Option { return func(c *config) { c.from, c.to = from, to } }

// WithHelo sets the name the clients give in EHLO.
func WithHelo(name string) Option { return func(c *config) { c.helo = name } }

// WithDeliveryWait is how long Run waits, after the last 250, for accepted messages
// still on their way to the sink (default two minutes).
func WithDeliveryWait(d time.Duration) Option { return func(c *config) { c.wait = d } }

// The envelope of every load message unless WithEnvelope says otherwise.
const (
	From = "load@contoso.test"
	To   = "sink@fabrikam.test"
)

func newConfig(opts []Option) config {
	c := config{from: From, to: To, helo: "load.contoso.test",
		wait: 2 * time.Minute, dialTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Submission is what the clients saw of one load.
type Submission struct {
	// Run prefixes every load ID of the submission ("RUN.N" in HeaderID).
	Run   string
	Start time.Time
	// Accepted[n] is when message n got its 250 after DATA; zero when it did not.
	Accepted []time.Time
	// Failed counts messages refused or lost with their session; FirstErr says why
	// the first one failed.
	Failed   int
	FirstErr error
}

// Count is the number of messages accepted.
func (s *Submission) Count() int {
	n := 0
	for _, t := range s.Accepted {
		if !t.IsZero() {
			n++
		}
	}
	return n
}

// Last is when the last 250 came.
func (s *Submission) Last() time.Time {
	var last time.Time
	for _, t := range s.Accepted {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// Submit sends l to the MTA at addr and returns when every message has had its answer.
func Submit(ctx context.Context, addr string, l Load, opts ...Option) (*Submission, error) {
	return submit(ctx, addr, newRun(), l, newConfig(opts))
}

func newRun() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "r" + hex.EncodeToString(b[:])
}

func submit(ctx context.Context, addr, run string, l Load, c config) (*Submission, error) {
	if l.Messages < 1 || l.Clients < 1 || l.Size < 1 {
		return nil, fmt.Errorf("load %+v: want at least one message, client and byte", l)
	}
	s := &Submission{Run: run, Accepted: make([]time.Time, l.Messages)}
	body := filler(l.Size)
	var next atomic.Int64
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		s.Failed++
		if s.FirstErr == nil {
			s.FirstErr = err
		}
	}
	var wg sync.WaitGroup
	s.Start = time.Now()
	for range min(l.Clients, l.Messages) {
		wg.Go(func() {
			cl := client{addr: addr, cfg: c}
			defer cl.close()
			for {
				n := int(next.Add(1) - 1)
				if n >= l.Messages || ctx.Err() != nil {
					return
				}
				if err := cl.send(ctx, message(run, n, l.Size, body, c)); err != nil {
					fail(fmt.Errorf("message %d: %w", n, err))
					continue
				}
				s.Accepted[n] = time.Now()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return s, err
	}
	return s, nil
}

// client is one SMTP session that sends message after message, and starts a new
// session when one fails.
type client struct {
	addr string
	cfg  config
	c    *smtp.Client
}

func (cl *client) send(ctx context.Context, msg []byte) error {
	if cl.c == nil {
		d := net.Dialer{Timeout: cl.cfg.dialTimeout}
		conn, err := d.DialContext(ctx, "tcp", cl.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", cl.addr, err)
		}
		cl.c = smtp.NewClient(conn)
		if err := cl.c.Hello(cl.cfg.helo); err != nil {
			cl.close()
			return fmt.Errorf("EHLO: %w", err)
		}
	}
	err := cl.transaction(msg)
	var refusal *smtp.SMTPError
	if errors.As(err, &refusal) {
		// A refusal leaves the session usable once the transaction is reset.
		if cl.c.Reset() != nil {
			cl.close()
		}
	} else if err != nil {
		cl.close()
	}
	return err
}

func (cl *client) transaction(msg []byte) error {
	if err := cl.c.Mail(cl.cfg.from, nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := cl.c.Rcpt(cl.cfg.to, nil); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := cl.c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

func (cl *client) close() {
	if cl.c == nil {
		return
	}
	_ = cl.c.Quit()
	_ = cl.c.Close()
	cl.c = nil
}

// Message is load message n of run as Submit sends it, for putting the same messages
// in a queue by other means.
func Message(run string, n, size int, opts ...Option) []byte {
	return message(run, n, size, filler(size), newConfig(opts))
}

// message is load message n of run: a header that names it, then body lines up to
// about size bytes in all.
func message(run string, n, size int, body []byte, c config) []byte {
	var b bytes.Buffer
	id := fmt.Sprintf("%s.%d", run, n)
	fmt.Fprintf(&b, "Message-ID: <%s@mtaload.test>\r\n%s: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nSubject: load %s\r\nDate: %s\r\n\r\n",
		id, HeaderID, id, c.from, c.to, id, time.Now().Format(time.RFC1123Z))
	rest := size - b.Len()
	// Whole lines only, so the size does not depend on where the filler was cut.
	if rest > len(body) {
		rest = len(body)
	}
	rest -= rest % len(fillerLine)
	if rest < len(fillerLine) {
		rest = len(fillerLine)
	}
	b.Write(body[:rest])
	return b.Bytes()
}

const fillerLine = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n"

// filler is at least size bytes of body lines.
func filler(size int) []byte {
	return bytes.Repeat([]byte(fillerLine), size/len(fillerLine)+1)
}

// Result is one run: what was accepted, what arrived, and how long it all took.
type Result struct {
	Load
	Accepted int
	// Delivered counts accepted messages that arrived at the sink; Duplicates the
	// further copies of any message.
	Delivered  int
	Duplicates int
	Failed     int
	FirstErr   error
	// AcceptSpan runs from the first connection to the last 250, DeliverSpan to the
	// last arrival at the sink.
	AcceptSpan  time.Duration
	DeliverSpan time.Duration
	// Latency quantiles of the time from a message's 250 to its arrival at the sink.
	P50, P99 time.Duration
	// Fsyncs made on the machine during the load (SyncCounter), nil when not counted.
	Fsyncs *int64
}

// FsyncsPerMessage is Fsyncs per accepted message, or -1 when they were not counted.
func (r Result) FsyncsPerMessage() float64 {
	if r.Fsyncs == nil || r.Accepted == 0 {
		return -1
	}
	return float64(*r.Fsyncs) / float64(r.Accepted)
}

// AcceptedPerSec is messages accepted per second of AcceptSpan.
func (r Result) AcceptedPerSec() float64 { return perSec(r.Accepted, r.AcceptSpan) }

// DeliveredPerSec is messages delivered per second of DeliverSpan.
func (r Result) DeliveredPerSec() float64 { return perSec(r.Delivered, r.DeliverSpan) }

// Lost counts messages accepted that did not arrive while Run waited.
func (r Result) Lost() int { return r.Accepted - r.Delivered }

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ErrUndelivered is returned with a Result when accepted messages had not reached the
// sink by the end of the delivery wait.
var ErrUndelivered = errors.New("accepted messages did not reach the sink")

// Run sends l to the MTA at addr, which relays to sink, and waits until every accepted
// message has arrived there (or the delivery wait is over).
func Run(ctx context.Context, addr string, sink *Sink, l Load, opts ...Option) (Result, error) {
	c := newConfig(opts)
	run := newRun()
	t := sink.track(run, l.Messages)
	defer sink.untrack(run)
	sub, err := submit(ctx, addr, run, l, c)
	if err != nil {
		return Result{}, err
	}
	accepted := sub.Count()
	wctx, cancel := context.WithTimeout(ctx, c.wait)
	defer cancel()
	waitErr := sink.waitFor(wctx, func() bool {
		n := 0
		for i, at := range sub.Accepted {
			if !at.IsZero() && !t.arrived[i].IsZero() {
				n++
			}
		}
		return n >= accepted
	})
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	sink.mu.Lock()
	arrived := slices.Clone(t.arrived)
	dups := t.dups
	sink.mu.Unlock()
	r := Result{Load: l, Accepted: accepted, Duplicates: dups, Failed: sub.Failed, FirstErr: sub.FirstErr,
		AcceptSpan: sub.Last().Sub(sub.Start)}
	var lat []time.Duration
	var last time.Time
	for i, at := range sub.Accepted {
		if at.IsZero() || arrived[i].IsZero() {
			continue
		}
		r.Delivered++
		lat = append(lat, arrived[i].Sub(at))
		if arrived[i].After(last) {
			last = arrived[i]
		}
	}
	if r.Delivered > 0 {
		r.DeliverSpan = last.Sub(sub.Start)
	}
	r.P50, r.P99 = Quantile(lat, 0.50), Quantile(lat, 0.99)
	if waitErr != nil {
		return r, fmt.Errorf("%d of %d after %s: %w", r.Lost(), accepted, c.wait, ErrUndelivered)
	}
	return r, nil
}

// Quantile is the nearest-rank q-quantile of ds (0 for none); it sorts ds.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
