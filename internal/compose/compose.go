package compose

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message/mail"

	"github.com/mailflow/mailflow/scenario"
)

// DefaultBody is the text of a message that gives no body, size or attachments.
const DefaultBody = "Reproduced by mailflow.\r\n"

// Message is m as it is sent, with Message-ID <headerID>.
func Message(m scenario.Message, headerID string) ([]byte, error) {
	from := m.From
	if from == "" {
		from = "<>"
	}
	body := DefaultBody
	switch {
	case m.Size > 0:
		body = string(Text(m.Size))
	case m.Body != "":
		body = crlf(m.Body)
	}
	if len(m.Attachments) == 0 {
		// Plain text, header by header as a client writes it: the shape every repro
		// has sent, which its golden output pins.
		return []byte(fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: mailflow repro\r\nMessage-ID: <%s>\r\n\r\n%s",
			from, strings.Join(m.To, ", "), headerID, body)), nil
	}
	var h mail.Header
	h.Set("From", from)
	h.Set("To", strings.Join(m.To, ", "))
	h.Set("Subject", "mailflow repro")
	h.Set("Message-Id", "<"+headerID+">")
	h.Set("MIME-Version", "1.0")
	var out bytes.Buffer
	w, err := mail.CreateWriter(&out, h)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	var th mail.InlineHeader
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	// 7bit when it is plain ASCII in short lines, as a generated body is; otherwise
	// go-message's quoted-printable.
	if sevenBit(body) {
		th.Set("Content-Transfer-Encoding", "7bit")
	}
	tw, err := w.CreateSingleInline(th)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if _, err := io.WriteString(tw, body); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	for _, a := range m.Attachments {
		var ah mail.AttachmentHeader
		ct := a.ContentType
		if ct == "" {
			ct = scenario.DefaultAttachmentType
		}
		ah.Set("Content-Type", ct)
		ah.SetFilename(a.Name)
		aw, err := w.CreateAttachment(ah)
		if err != nil {
			return nil, fmt.Errorf("compose: attachment %s: %w", a.Name, err)
		}
		content := []byte(a.Content)
		if a.Size > 0 {
			content = Bytes(a.Size)
		}
		if _, err := aw.Write(content); err != nil {
			return nil, fmt.Errorf("compose: attachment %s: %w", a.Name, err)
		}
		if err := aw.Close(); err != nil {
			return nil, fmt.Errorf("compose: attachment %s: %w", a.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return out.Bytes(), nil
}

// Text is n octets of printable ASCII in CRLF-ended lines of at most 78 octets
// (RFC 5322 §2.1.1), ending with CRLF when n allows, the same for every n.
func Text(n int) []byte {
	const line = "The quick brown fox jumps over the lazy dog, as mailflow generated it: 0123456"
	out := make([]byte, 0, n)
	for len(out) < n {
		rest := n - len(out)
		switch {
		case rest >= len(line)+2:
			out = append(out, line...)
			out = append(out, '\r', '\n')
		case rest >= 2:
			out = append(out, line[:rest-2]...)
			out = append(out, '\r', '\n')
		default:
			out = append(out, 'x')
		}
	}
	return out
}

// Bytes is n octets of every value, in a fixed order: content that compresses badly
// and survives only a transfer that keeps every octet.
func Bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i*131 + i/256*7)
	}
	return out
}

// crlf ends every line of s with CRLF, as the wire has it, and the text with one.
func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

func sevenBit(s string) bool {
	for _, l := range strings.Split(s, "\r\n") {
		if len(l) > 998 {
			return false
		}
		for i := 0; i < len(l); i++ {
			if l[i] >= 0x80 || l[i] == 0 || l[i] == '\r' || l[i] == '\n' {
				return false
			}
		}
	}
	return true
}
