package mailflow

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/mailflow/mailflow/containers/logline"
)

// A container started again hands its log over from the beginning: what was passed
// on is skipped, a line cut short by the stop comes whole, and the new ready line is
// awaited.
func TestLineSplitterResume(t *testing.T) {
	var got []string
	s := newLineSplitter(func(l logline.Line) {
		switch {
		case l.Ready != nil:
			got = append(got, "ready "+l.Ready.Server)
		case l.Trace != nil:
			got = append(got, l.Trace.Detail)
		}
	})
	const (
		ready = `{"ready":{"server":"HUB-PAR","role":"hub"}}` + "\n"
		one   = `{"trace":{"time":"2026-01-01T00:00:00Z","event":"LINKSTATE","server":"HUB-PAR","detail":"one"}}` + "\n"
		two   = `{"trace":{"time":"2026-01-01T00:00:01Z","event":"LINKSTATE","server":"HUB-PAR","detail":"two"}}` + "\n"
		three = `{"trace":{"time":"2026-01-01T00:00:02Z","event":"LINKSTATE","server":"HUB-PAR","detail":"three"}}` + "\n"
	)
	out := func(text string) {
		s.Accept(testcontainers.Log{LogType: testcontainers.StdoutLog, Content: []byte(text)})
	}
	out(ready + "not a protocol line\n" + one + two[:20])
	if want := "ready HUB-PAR,one"; strings.Join(got, ",") != want {
		t.Fatalf("first run passed on %q, want %q", got, want)
	}
	n := s.resume()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.waitReady(ctx, n) }()
	out(ready + "not a protocol line\n" + one + two + ready + three)
	if err := <-done; err != nil {
		t.Fatalf("the new ready line was not seen: %v", err)
	}
	if want := "ready HUB-PAR,one,two,ready HUB-PAR,three"; strings.Join(got, ",") != want {
		t.Errorf("passed on %q, want %q", got, want)
	}
}
