package transport

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/smtpd"
)

// countingDir knows alice, is down while down is set, and counts its questions.
type countingDir struct {
	asked int
	down  bool
}

func (d *countingDir) Lookup(context.Context, string) (*directory.Entry, error) {
	return nil, errors.New("not used")
}

func (d *countingDir) Authenticate(context.Context, string, string) error {
	return errors.New("not used")
}

func (d *countingDir) Exists(_ context.Context, addr string) error {
	d.asked++
	switch {
	case d.down:
		return &directory.UnavailableError{Err: errors.New("connection refused")}
	case strings.EqualFold(addr, "alice@contoso.test"):
		return nil
	}
	return directory.ErrNotFound
}

// The recipient filter reuses an answer, either way, for RecipientCacheTTL on the
// server's clock, and never reuses an outage.
func TestRecipientCache(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d := &countingDir{}
	a := newDirAdapter(d, clk)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := a.Exists(ctx, "Alice@contoso.test"); err != nil {
			t.Fatalf("alice: %v", err)
		}
		if err := a.Exists(ctx, "nobody@contoso.test"); !errors.Is(err, smtpd.ErrUnknown) {
			t.Fatalf("nobody: %v, want ErrUnknown", err)
		}
	}
	if d.asked != 2 {
		t.Fatalf("the directory was asked %d times for two addresses", d.asked)
	}
	clk.Advance(RecipientCacheTTL)
	d.down = true
	if err := a.Exists(ctx, "alice@contoso.test"); !directory.IsUnavailable(err) {
		t.Fatalf("alice after the ttl, directory down: %v, want unavailable", err)
	}
	d.down = false
	if err := a.Exists(ctx, "alice@contoso.test"); err != nil {
		t.Fatalf("alice with the directory back: %v", err)
	}
	if d.asked != 4 {
		t.Fatalf("the directory was asked %d times, want 4: an outage is not kept", d.asked)
	}
}
