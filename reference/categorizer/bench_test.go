package categorizer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/scenario"
)

// BenchmarkResolve resolves an envelope of 100 recipients (mailboxes, half of them by a
// secondary proxy) with a warm cache: the categorizer's own cost per message, without
// the directory.
func BenchmarkResolve(b *testing.B) {
	var rcpts []scenario.Recipient
	var envelope []string
	for i := range 100 {
		mail := fmt.Sprintf("user%03d@contoso.test", i)
		alias := fmt.Sprintf("u%03d@sales.contoso.test", i)
		rcpts = append(rcpts, scenario.Recipient{Mail: mail, Proxies: []string{alias}, Mailbox: fmt.Sprintf("MBX%d", i%4)})
		if i%2 == 0 {
			envelope = append(envelope, mail)
		} else {
			envelope = append(envelope, alias)
		}
	}
	_, dc := start(b, rcpts)
	c := categorizer.New(dc, categorizer.WithClock(newFake()), categorizer.WithTTL(time.Hour))
	ctx := context.Background()
	if got, err := c.Resolve(ctx, envelope); err != nil || len(got) != 100 {
		b.Fatalf("warm-up: %d results, %v", len(got), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Resolve(ctx, envelope); err != nil {
			b.Fatal(err)
		}
	}
}
