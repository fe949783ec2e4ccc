package edge

import (
	"context"
	"strings"
	"time"

	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/trace"
)

// statusOf takes the enhanced code from a reply like "550 5.1.1 User unknown".
func statusOf(reply string, permanent bool) string {
	f := strings.Fields(reply)
	if len(f) > 1 && len(f[1]) >= 5 && f[1][1] == '.' && (f[1][0] == '4' || f[1][0] == '5') {
		return f[1]
	}
	if permanent {
		return "5.0.0"
	}
	return "4.0.0"
}

// postmaster is the From of DSNs: postmaster at the default accepted domain (DSN-012).
func (e *Edge) postmaster() string {
	return "postmaster@" + e.cfg.Scenario.DefaultDomain()
}

// sendDSN queues a failed DSN to the original sender for the recipients that failed,
// never for a message whose reverse-path was null (RFC 5321 §6.1, DSN-002).
func (e *Edge) sendDSN(m *queue.Message, data []byte, failed []queue.Outcome) {
	e.notify(m, data, failed, dsn.Failed, time.Time{})
}

// sendDelayDSN queues the one delay DSN (QUEUE-006) for the recipients still waiting,
// with the time the server gives up on them.
func (e *Edge) sendDelayDSN(m *queue.Message, data []byte, delayed []queue.Outcome, until time.Time) {
	e.notify(m, data, delayed, dsn.Delayed, until)
}

func (e *Edge) notify(m *queue.Message, data []byte, outcomes []queue.Outcome, action dsn.Action, until time.Time) {
	if m.From == "" {
		return
	}
	permanent := action == dsn.Failed
	r := dsn.Report{
		ReportingMTA: e.cfg.Server.FQDN, From: e.postmaster(), To: m.From,
		ArrivalDate: m.Received, Date: e.cfg.Clock.Now(), Original: data,
	}
	for _, o := range outcomes {
		rc := dsn.Recipient{FinalRecipient: o.Rcpt, Action: action, Status: statusOf(o.Reply, permanent), RemoteMTA: o.RemoteMTA, WillRetryUntil: until}
		if o.RemoteMTA != "" {
			rc.DiagnosticCode = o.Reply
		} else {
			rc.Reason = o.Reply
		}
		for _, qr := range m.Recipients {
			if qr.Addr == o.Rcpt {
				rc.OriginalRecipient = qr.ORCPT
			}
		}
		r.Recipients = append(r.Recipients, rc)
	}
	msg, err := dsn.Build(r)
	if err != nil {
		e.cfg.Logger.Error("dsn: build failed", "msgid", m.ID, "err", err)
		return
	}
	d := &queue.Message{From: "", Recipients: []queue.Recipient{{Addr: m.From}}, HeaderID: m.HeaderID}
	if err := e.queue.Enqueue(context.Background(), d, msg); err != nil {
		e.cfg.Logger.Error("dsn: enqueue failed", "msgid", m.ID, "err", err)
		return
	}
	rcpts := make([]string, len(outcomes))
	for i, o := range outcomes {
		rcpts[i] = o.Rcpt
	}
	e.cfg.Trace.Record(trace.Event{Time: e.cfg.Clock.Now(), Type: trace.DSN, MessageID: m.ID, HeaderID: m.HeaderID,
		Server: e.cfg.Server.Name, Sender: m.From, Recipients: rcpts, Detail: string(action) + " DSN queued as " + d.ID + " to " + m.From})
}
