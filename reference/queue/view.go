package queue

import (
	"sort"
	"time"
)

// Info is one queue of a server as Exchange's Get-Queue shows it (QUEUE-011).
type Info struct {
	Name      string    `json:"name"`
	Messages  int       `json:"messages"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// Queues groups messages by the queue they wait in: Submission first, then the
// delivery queues by name, then Unreachable and Poison. The three named queues are
// always listed, empty or not.
func Queues(ms []Message) []Info {
	by := map[string]*Info{}
	for _, n := range []string{QueueSubmission, QueueUnreachable, QueuePoison} {
		by[n] = &Info{Name: n}
	}
	for _, m := range ms {
		name := m.Queue
		if name == "" {
			name = QueueSubmission
		}
		in, ok := by[name]
		if !ok {
			in = &Info{Name: name}
			by[name] = in
		}
		in.Messages++
		if name != QueuePoison && (in.NextRetry.IsZero() || m.NextAttempt.Before(in.NextRetry)) {
			in.NextRetry = m.NextAttempt
		}
		if m.LastReply != "" {
			in.LastError = m.LastReply
		}
	}
	out := make([]Info, 0, len(by))
	for _, in := range by {
		out = append(out, *in)
	}
	rank := func(n string) int {
		switch n {
		case QueueSubmission:
			return 0
		case QueueUnreachable:
			return 2
		case QueuePoison:
			return 3
		}
		return 1
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Name), rank(out[j].Name); ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}
