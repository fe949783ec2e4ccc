package dsn

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Action is a per-recipient DSN action (RFC 3464 §2.3.3).
type Action string

const (
	Failed    Action = "failed"
	Delayed   Action = "delayed"
	Delivered Action = "delivered"
	Relayed   Action = "relayed"
	Expanded  Action = "expanded"
)

// Recipient is one per-recipient block (RFC 3464 §2.3).
type Recipient struct {
	// FinalRecipient is the envelope address as accepted, letter case preserved (DSN-005).
	FinalRecipient string
	// OriginalRecipient is the xtext-decoded ORCPT address; "" when none was given.
	OriginalRecipient string
	Action            Action
	// Status is the enhanced status code, "5.1.1"; its class must fit Action (DSN-007).
	Status string
	// RemoteMTA is the host that reported the outcome; "" omits Remote-MTA (DSN-008).
	RemoteMTA string
	// DiagnosticCode is the remote reply verbatim, "550 5.1.1 User unknown"; a
	// multi-line reply is folded, one reply line per header line.
	DiagnosticCode string
	// Reason says in words why a recipient failed here, with no remote reply to quote
	// ("554 5.4.6 mail for loop.test loops back to myself"); only the human part shows it.
	Reason      string
	LastAttempt time.Time
	// WillRetryUntil is written only for Delayed (DSN-009).
	WillRetryUntil time.Time
}

// Report is a whole DSN.
type Report struct {
	ReportingMTA string // fqdn of the MTA writing the DSN
	From         string // postmaster address (DSN-012)
	To           string // original envelope sender; never empty (DSN-002)
	EnvelopeID   string // xtext-decoded ENVID; "" omits Original-Envelope-Id
	ArrivalDate  time.Time
	Date         time.Time // Date of the DSN; zero means now
	MessageID    string    // without <>; generated from ReportingMTA when empty
	Recipients   []Recipient
	Original     []byte // original message, header and body
	// ReturnHeadersOnly (RET=HDRS) returns only the original header as
	// text/rfc822-headers instead of the whole message as message/rfc822.
	ReturnHeadersOnly bool

	// boundary pins the MIME boundary so golden files are stable; empty means random.
	boundary string
}

// ErrInvalid is wrapped by every error Build returns for a report it refuses.
var ErrInvalid = errors.New("dsn: invalid report")

var statusRe = regexp.MustCompile(`^([245])\.[0-9]{1,3}\.[0-9]{1,3}$`)

// classes lists the status classes each action may carry (RFC 3464 §2.3.3, §2.3.4).
// A failed DSN may carry 4.x.x when transient failures were abandoned (DSN-007).
var classes = map[Action]string{Failed: "45", Delayed: "4", Delivered: "2", Relayed: "2", Expanded: "2"}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
}

// oneLine rejects values that would break out of their header line.
func oneLine(what, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalid("%s is empty", what)
	}
	if strings.ContainsAny(v, "\r\n") {
		return invalid("%s %q contains a line break", what, v)
	}
	return nil
}

func (r *Report) validate() error {
	// An empty To would mean a DSN about a null-sender message, which could loop.
	for _, c := range []struct {
		what, v  string
		required bool
	}{
		{"ReportingMTA", r.ReportingMTA, true}, {"From", r.From, true}, {"To", r.To, true},
		{"EnvelopeID", r.EnvelopeID, false}, {"MessageID", r.MessageID, false},
	} {
		if err := oneLine(c.what, c.v, c.required); err != nil {
			return err
		}
	}
	if len(r.Recipients) == 0 {
		return invalid("no recipients")
	}
	for i, rc := range r.Recipients {
		for _, c := range []struct {
			what, v  string
			required bool
		}{
			{"FinalRecipient", rc.FinalRecipient, true}, {"OriginalRecipient", rc.OriginalRecipient, false},
			{"RemoteMTA", rc.RemoteMTA, false},
		} {
			if err := oneLine(c.what, c.v, c.required); err != nil {
				return fmt.Errorf("recipient %d: %w", i, err)
			}
		}
		allowed, ok := classes[rc.Action]
		if !ok {
			return invalid("recipient %d (%s): unknown action %q", i, rc.FinalRecipient, rc.Action)
		}
		m := statusRe.FindStringSubmatch(rc.Status)
		if m == nil {
			return invalid("recipient %d (%s): status %q is not class.subject.detail", i, rc.FinalRecipient, rc.Status)
		}
		if !strings.Contains(allowed, m[1]) {
			return invalid("recipient %d (%s): status %s does not fit action %s", i, rc.FinalRecipient, rc.Status, rc.Action)
		}
	}
	return nil
}

// outcome is the worst action reported, which names the whole DSN: one failure
// makes it a failure notice even if other recipients were only delayed.
func outcome(rs []Recipient) Action {
	worst := Delivered
	for _, rc := range rs {
		switch {
		case rc.Action == Failed:
			return Failed
		case rc.Action == Delayed:
			worst = Delayed
		}
	}
	return worst
}

func subject(a Action) string {
	switch a {
	case Failed:
		return "Delivery Status Notification (Failure)"
	case Delayed:
		return "Delivery Status Notification (Delay)"
	}
	return "Delivery Status Notification (Success)"
}

// replyLines splits a possibly multi-line SMTP reply, dropping empty lines because
// an empty line inside the delivery-status body would end the recipient block.
func replyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// deliveryStatus is the message/delivery-status body (RFC 3464 §2.1). The fields
// are written with their RFC spellings (Reporting-MTA, not Reporting-Mta), which
// go-message's header writer would canonicalise away.
func (r *Report) deliveryStatus() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", r.ReportingMTA)
	if r.EnvelopeID != "" {
		fmt.Fprintf(&b, "Original-Envelope-Id: %s\r\n", r.EnvelopeID)
	}
	if !r.ArrivalDate.IsZero() {
		fmt.Fprintf(&b, "Arrival-Date: %s\r\n", r.ArrivalDate.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		if rc.OriginalRecipient != "" {
			fmt.Fprintf(&b, "Original-Recipient: rfc822; %s\r\n", rc.OriginalRecipient)
		}
		fmt.Fprintf(&b, "Final-Recipient: rfc822; %s\r\n", rc.FinalRecipient)
		fmt.Fprintf(&b, "Action: %s\r\n", rc.Action)
		fmt.Fprintf(&b, "Status: %s\r\n", rc.Status)
		if rc.RemoteMTA != "" {
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", rc.RemoteMTA)
		}
		if lines := replyLines(rc.DiagnosticCode); len(lines) > 0 {
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", strings.Join(lines, "\r\n "))
		}
		if !rc.LastAttempt.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "Will-Retry-Until: %s\r\n", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.Bytes()
}

func (r *Report) human(a Action) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", r.ReportingMTA)
	switch a {
	case Failed:
		b.WriteString("Your message could not be delivered to one or more recipients.\r\nIt will not be retried for them.\r\n\r\n")
	case Delayed:
		b.WriteString("Your message has not been delivered to one or more recipients yet.\r\nDelivery is still being attempted; you do not need to resend it.\r\n\r\n")
	default:
		b.WriteString("Your message was delivered to the recipients below.\r\n\r\n")
	}
	for _, rc := range r.Recipients {
		fmt.Fprintf(&b, "<%s>: %s, status %s\r\n", rc.FinalRecipient, rc.Action, rc.Status)
		lines := replyLines(rc.DiagnosticCode)
		switch {
		case rc.RemoteMTA != "" && len(lines) > 0:
			fmt.Fprintf(&b, "    %s said:\r\n", rc.RemoteMTA)
		case len(lines) > 0:
			b.WriteString("    diagnostic:\r\n")
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "      %s\r\n", l)
		}
		for _, l := range replyLines(rc.Reason) {
			fmt.Fprintf(&b, "    %s\r\n", l)
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "    retrying until %s\r\n", rc.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.Bytes()
}

// crlf makes every line ending CRLF, since the DSN is sent over SMTP as is.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// headerOnly cuts a CRLF message at its first empty line.
func headerOnly(msg []byte) []byte {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Build writes the DSN as an RFC 5322 message with CRLF line endings.
func Build(r Report) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Date.IsZero() {
		r.Date = time.Now()
	}
	r.MessageID = strings.TrimSuffix(strings.TrimPrefix(r.MessageID, "<"), ">")
	if r.MessageID == "" {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		r.MessageID = fmt.Sprintf("dsn.%s.%d@%s", hex.EncodeToString(rnd[:]), r.Date.UnixNano(), r.ReportingMTA)
	}
	boundary := r.boundary
	if boundary == "" {
		// Let go-message pick the random boundary, as it would for a header without one.
		boundary = textproto.NewMultipartWriter(io.Discard).Boundary()
	}
	a := outcome(r.Recipients)

	// go-message writes fields in the reverse order of insertion, so the list
	// below is added back to front to come out in the conventional order.
	var h message.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status", "boundary": boundary})
	h.AddRaw([]byte("MIME-Version: 1.0\r\n"))
	h.Add("Auto-Submitted", "auto-replied")
	h.AddRaw([]byte("Message-ID: <" + r.MessageID + ">\r\n"))
	h.Add("Date", r.Date.Format(time.RFC1123Z))
	h.Add("Subject", subject(a))
	h.Add("To", r.To)
	h.Add("From", r.From)

	var out bytes.Buffer
	mw, err := message.CreateWriter(&out, h)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	human := r.human(a)
	charset := "us-ascii"
	if !isASCII(human) {
		charset = "utf-8"
	}
	if err := writePart(mw, "text/plain", map[string]string{"charset": charset}, human); err != nil {
		return nil, err
	}
	if err := writePart(mw, "message/delivery-status", nil, r.deliveryStatus()); err != nil {
		return nil, err
	}
	if len(r.Original) > 0 {
		orig, ct := crlf(r.Original), "message/rfc822"
		if r.ReturnHeadersOnly {
			orig, ct = headerOnly(orig), "text/rfc822-headers"
		}
		if err := writePart(mw, ct, nil, orig); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("dsn: closing multipart: %w", err)
	}
	return out.Bytes(), nil
}

func writePart(mw *message.Writer, ct string, params map[string]string, body []byte) error {
	var ph message.Header
	ph.SetContentType(ct, params)
	w, err := mw.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("dsn: %s part: %w", ct, err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("dsn: %s part: %w", ct, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("dsn: %s part: %w", ct, err)
	}
	return nil
}
