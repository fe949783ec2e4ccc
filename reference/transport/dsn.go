package transport

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

// successStatus is the 2.x.x status of a reply like "250 2.0.0 Queued as ...".
func successStatus(reply string) string {
	f := strings.Fields(reply)
	if len(f) > 1 && len(f[1]) >= 5 && f[1][0] == '2' && f[1][1] == '.' {
		return f[1]
	}
	return "2.0.0"
}

// postmaster is the From of DSNs: postmaster at the default accepted domain (DSN-012).
func (e *Server) postmaster() string {
	return "postmaster@" + e.cfg.Scenario.DefaultDomain()
}

// sendDSN queues a failed DSN to the original sender for the recipients that failed,
// never for a message whose reverse-path was null (RFC 5321 §6.1, DSN-002).
func (e *Server) sendDSN(m *queue.Message, data []byte, failed []queue.Outcome) {
	e.notify(m, data, failed, dsn.Failed, time.Time{})
}

// sendDelayDSN queues the one delay DSN (QUEUE-006) for the recipients still waiting,
// with the time the server gives up on them.
func (e *Server) sendDelayDSN(m *queue.Message, data []byte, delayed []queue.Outcome, until time.Time) {
	e.notify(m, data, delayed, dsn.Delayed, until)
}

// notifyKind is the NOTIFY keyword that asks for each action (RFC 3461 §4.1).
var notifyKind = map[dsn.Action]string{
	dsn.Failed: queue.NotifyFailure, dsn.Delayed: queue.NotifyDelay,
	dsn.Delivered: queue.NotifySuccess, dsn.Relayed: queue.NotifySuccess, dsn.Expanded: queue.NotifySuccess,
}

// Notify queues one DSN of action to the sender of m about the outcomes' recipients
// that asked for it with NOTIFY (or by default: failures and delays).
func (e *Server) Notify(m *queue.Message, data []byte, outcomes []queue.Outcome, action dsn.Action) {
	e.notify(m, data, outcomes, action, time.Time{})
}

func (e *Server) notify(m *queue.Message, data []byte, outcomes []queue.Outcome, action dsn.Action, until time.Time) {
	if m.From == "" {
		return
	}
	var wanted []queue.Outcome
	for _, o := range outcomes {
		if qr := m.Recipient(o.Rcpt); qr == nil || qr.Wants(notifyKind[action]) {
			wanted = append(wanted, o)
		}
	}
	if outcomes = wanted; len(outcomes) == 0 {
		return
	}
	permanent := action == dsn.Failed
	r := dsn.Report{
		ReportingMTA: e.cfg.Server.FQDN, From: e.postmaster(), To: m.From, EnvelopeID: m.EnvID,
		ArrivalDate: m.Received, Date: e.cfg.Clock.Now(), Original: data,
		// A success notice returns the header only (RFC 3461 §4.3 leaves RET to
		// failures); a failure or delay returns what RET asked for, all by default.
		ReturnHeadersOnly: strings.EqualFold(m.Ret, "HDRS") || notifyKind[action] == queue.NotifySuccess,
	}
	for _, o := range outcomes {
		status := statusOf(o.Reply, permanent)
		if notifyKind[action] == queue.NotifySuccess {
			status = successStatus(o.Reply)
		}
		rc := dsn.Recipient{FinalRecipient: o.Rcpt, Action: action, Status: status, RemoteMTA: o.RemoteMTA, WillRetryUntil: until}
		if o.RemoteMTA != "" {
			rc.DiagnosticCode = o.Reply
		} else {
			rc.Reason = o.Reply
		}
		if qr := m.Recipient(o.Rcpt); qr != nil {
			rc.OriginalRecipient = qr.ORCPT
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
		Server: e.cfg.Server.Name, Sender: m.From, Recipients: rcpts, Detail: string(action) + " DSN queued as " + d.ID + " to " + m.From,
		CopyID: d.ID})
}
