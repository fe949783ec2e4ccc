// Package dsn builds RFC 3464 delivery status notifications, multipart/report per
// RFC 6522, with go-message writing the MIME structure, and parses them back for the
// suites. Serves DSN-003..DSN-009, SMART-004, QUEUE-002.
package dsn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	nettextproto "net/textproto"
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

// Recipient is one per-recipient block.
type Recipient struct {
	FinalRecipient    string
	OriginalRecipient string
	Action            Action
	Status            string
	RemoteMTA         string
	DiagnosticCode    string
	LastAttempt       time.Time
	WillRetryUntil    time.Time
}

// Report is a whole DSN.
type Report struct {
	ReportingMTA      string
	From, To          string
	EnvelopeID        string
	ArrivalDate, Date time.Time
	MessageID         string
	Recipients        []Recipient
	Original          []byte
	ReturnHeadersOnly bool
	// boundary fixes the MIME boundary (golden tests); empty means random.
	boundary string
}

var statusRe = regexp.MustCompile(`^([245])\.\d{1,3}\.\d{1,3}$`)

const dateFormat = "Mon, 02 Jan 2006 15:04:05 -0700"

func (r *Report) validate() error {
	if len(r.Recipients) == 0 {
		return errors.New("dsn: no recipients")
	}
	for _, rc := range r.Recipients {
		m := statusRe.FindStringSubmatch(rc.Status)
		if m == nil {
			return fmt.Errorf("dsn: %s: status %q is not d.d.d", rc.FinalRecipient, rc.Status)
		}
		ok := map[Action]string{Failed: "45", Delayed: "4", Delivered: "2", Relayed: "2", Expanded: "2"}[rc.Action]
		if ok == "" {
			return fmt.Errorf("dsn: %s: unknown action %q", rc.FinalRecipient, rc.Action)
		}
		if !strings.Contains(ok, m[1]) {
			return fmt.Errorf("dsn: %s: status %s does not fit action %s", rc.FinalRecipient, rc.Status, rc.Action)
		}
	}
	return nil
}

func subject(rs []Recipient) string {
	switch rs[0].Action {
	case Delayed:
		return "Delivery Status Notification (Delay)"
	case Failed:
		return "Delivery Status Notification (Failure)"
	}
	return "Delivery Status Notification (Success)"
}

// deliveryStatus is the message/delivery-status body (RFC 3464 §2.1).
func (r *Report) deliveryStatus() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", r.ReportingMTA)
	if r.EnvelopeID != "" {
		fmt.Fprintf(&b, "Original-Envelope-Id: %s\r\n", r.EnvelopeID)
	}
	if !r.ArrivalDate.IsZero() {
		fmt.Fprintf(&b, "Arrival-Date: %s\r\n", r.ArrivalDate.Format(dateFormat))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		if rc.OriginalRecipient != "" {
			fmt.Fprintf(&b, "Original-Recipient: rfc822; %s\r\n", rc.OriginalRecipient)
		}
		fmt.Fprintf(&b, "Final-Recipient: rfc822; %s\r\n", rc.FinalRecipient)
		fmt.Fprintf(&b, "Action: %s\r\nStatus: %s\r\n", rc.Action, rc.Status)
		if rc.RemoteMTA != "" {
			fmt.Fprintf(&b, "Remote-MTA: dns; %s\r\n", rc.RemoteMTA)
		}
		if rc.DiagnosticCode != "" {
			fmt.Fprintf(&b, "Diagnostic-Code: smtp; %s\r\n", rc.DiagnosticCode)
		}
		if !rc.LastAttempt.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", rc.LastAttempt.Format(dateFormat))
		}
		if rc.Action == Delayed && !rc.WillRetryUntil.IsZero() {
			fmt.Fprintf(&b, "Will-Retry-Until: %s\r\n", rc.WillRetryUntil.Format(dateFormat))
		}
	}
	return b.Bytes()
}

func (r *Report) human() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "This is the mail system at %s.\r\n\r\n", r.ReportingMTA)
	switch r.Recipients[0].Action {
	case Failed:
		b.WriteString("Your message could not be delivered to one or more recipients.\r\n\r\n")
	case Delayed:
		b.WriteString("Your message has not been delivered yet; delivery is still being attempted.\r\n\r\n")
	default:
		b.WriteString("Your message was delivered.\r\n\r\n")
	}
	for _, rc := range r.Recipients {
		fmt.Fprintf(&b, "  <%s>: %s (%s)", rc.FinalRecipient, rc.Action, rc.Status)
		if rc.DiagnosticCode != "" {
			fmt.Fprintf(&b, ": %s said: %s", rc.RemoteMTA, rc.DiagnosticCode)
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// Build writes the DSN as an RFC 5322 message.
func Build(r Report) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Date.IsZero() {
		r.Date = time.Now()
	}
	if r.MessageID == "" {
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		r.MessageID = fmt.Sprintf("%s.%d@%s", hex.EncodeToString(rnd[:]), r.Date.UnixNano(), r.ReportingMTA)
	}
	boundary := r.boundary
	if boundary == "" {
		var rnd [12]byte
		_, _ = rand.Read(rnd[:])
		boundary = "dsn-" + hex.EncodeToString(rnd[:])
	}
	var h message.Header
	h.Set("From", r.From)
	h.Set("To", r.To)
	h.Set("Date", r.Date.Format(dateFormat))
	h.Set("Message-Id", "<"+r.MessageID+">")
	h.Set("Subject", subject(r.Recipients))
	h.Set("Mime-Version", "1.0")
	h.Set("Auto-Submitted", "auto-replied")
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status", "boundary": boundary})
	var out bytes.Buffer
	mw, err := message.CreateWriter(&out, h)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	part := func(ct string, body []byte) error {
		var ph message.Header
		ph.SetContentType(ct, nil)
		if ct == "text/plain" {
			ph.SetContentType(ct, map[string]string{"charset": "us-ascii"})
		}
		w, err := mw.CreatePart(ph)
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
		return w.Close()
	}
	orig, origType := r.Original, "message/rfc822"
	if r.ReturnHeadersOnly {
		origType = "text/rfc822-headers"
		if i := bytes.Index(orig, []byte("\r\n\r\n")); i >= 0 {
			orig = orig[:i+2]
		}
	}
	if err := errors.Join(part("text/plain", r.human()), part("message/delivery-status", r.deliveryStatus())); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	if len(orig) > 0 {
		if err := part(origType, orig); err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return out.Bytes(), nil
}

// Parsed is a DSN read back.
type Parsed struct {
	Header      map[string]string
	ContentType string
	ReportType  string
	PartTypes   []string
	HumanText   string
	PerMessage  map[string]string
	// Recipients hold each block's fields by canonical name ("Final-Recipient").
	Recipients []map[string]string
	Original   []byte
}

// Parse reads a DSN.
func Parse(msg []byte) (*Parsed, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) {
		return nil, fmt.Errorf("dsn parse: %w", err)
	}
	p := &Parsed{Header: map[string]string{}}
	f := e.Header.Fields()
	for f.Next() {
		if _, ok := p.Header[f.Key()]; !ok {
			p.Header[nettextproto.CanonicalMIMEHeaderKey(f.Key())] = f.Value()
		}
	}
	ct, params, err := e.Header.ContentType()
	if err != nil {
		return nil, fmt.Errorf("dsn parse: content type: %w", err)
	}
	p.ContentType, p.ReportType = ct, params["report-type"]
	mr := e.MultipartReader()
	if mr == nil {
		return nil, fmt.Errorf("dsn parse: %s is not multipart", ct)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dsn parse: %w", err)
		}
		pt, _, _ := part.Header.ContentType()
		p.PartTypes = append(p.PartTypes, pt)
		body, err := io.ReadAll(part.Body)
		if err != nil {
			return nil, fmt.Errorf("dsn parse: %w", err)
		}
		switch pt {
		case "text/plain":
			p.HumanText = string(body)
		case "message/delivery-status":
			if err := p.readStatus(body); err != nil {
				return nil, err
			}
		case "message/rfc822", "text/rfc822-headers":
			p.Original = body
		}
	}
	return p, nil
}

func (p *Parsed) readStatus(body []byte) error {
	br := bufio.NewReader(bytes.NewReader(body))
	first := true
	for {
		h, err := textproto.ReadHeader(br)
		if err != nil && err != io.EOF {
			return fmt.Errorf("dsn parse: delivery-status: %w", err)
		}
		fields := map[string]string{}
		hf := h.Fields()
		for hf.Next() {
			fields[nettextproto.CanonicalMIMEHeaderKey(hf.Key())] = hf.Value()
		}
		if len(fields) > 0 {
			if first {
				p.PerMessage = fields
			} else {
				p.Recipients = append(p.Recipients, fields)
			}
		}
		first = false
		if err == io.EOF {
			return nil
		}
		if _, perr := br.Peek(1); perr != nil {
			return nil
		}
	}
}
