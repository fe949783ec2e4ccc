package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	nettextproto "net/textproto"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Parsed is a DSN read back. Map keys are net/textproto canonical names
// ("Final-Recipient", "Remote-Mta", "Message-Id", see fieldKey); Field looks a name
// up in any spelling.
type Parsed struct {
	Header      map[string]string // top-level header, first value of each field
	ContentType string            // media type of the whole message
	ReportType  string            // report-type parameter
	PartTypes   []string          // media types of the top-level parts, in order
	HumanText   string            // the first text/plain found in the first part
	PerMessage  map[string]string // per-message fields of the delivery-status part
	Recipients  []map[string]string
	Original    []byte // returned message or header, as carried
}

// Field returns fields[name] for any spelling of name ("Remote-MTA", "remote-mta").
func Field(fields map[string]string, name string) string {
	return fields[fieldKey(name)]
}

// fieldKey is the map key of a field name: net/textproto's canonical form. That form
// leaves a name with a byte outside HTTP's token set as it is, but RFC 5322 allows
// such bytes ('"', '(', '/' ...) in field names, so those names are put in the same
// form here; otherwise "X\"Y" and "x\"y" would be two fields, neither found by the
// other spelling.
func fieldKey(name string) string {
	if k := nettextproto.CanonicalMIMEHeaderKey(name); k != name {
		return k
	}
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

// Parse reads a DSN. A multipart message without a delivery-status part is not an
// error: the caller sees PartTypes and ReportType and can say what was wrong.
func Parse(msg []byte) (*Parsed, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("dsn parse: %w", err)
	}
	p := &Parsed{Header: firstValues(e.Header.Header)}
	ct, params, err := e.Header.ContentType()
	if err != nil {
		return nil, fmt.Errorf("dsn parse: content type: %w", err)
	}
	p.ContentType, p.ReportType = ct, params["report-type"]
	mr := e.MultipartReader()
	if mr == nil {
		return nil, fmt.Errorf("dsn parse: %s is not multipart", ct)
	}
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil, fmt.Errorf("dsn parse: part %d: %w", i, err)
		}
		pt, _, _ := part.Header.ContentType()
		p.PartTypes = append(p.PartTypes, pt)
		switch {
		case pt == "message/delivery-status" || pt == "message/global-delivery-status":
			body, err := io.ReadAll(part.Body)
			if err != nil {
				return nil, fmt.Errorf("dsn parse: %s: %w", pt, err)
			}
			if err := p.readStatus(body); err != nil {
				return nil, fmt.Errorf("dsn parse: %s: %w", pt, err)
			}
		case pt == "message/rfc822" || pt == "text/rfc822-headers" || pt == "message/global" || pt == "message/global-headers":
			if p.Original, err = io.ReadAll(part.Body); err != nil {
				return nil, fmt.Errorf("dsn parse: %s: %w", pt, err)
			}
		case i == 0:
			// Exchange sends the human part as multipart/alternative.
			if p.HumanText, err = firstText(part); err != nil {
				return nil, fmt.Errorf("dsn parse: human part: %w", err)
			}
		}
	}
	return p, nil
}

func firstValues(h textproto.Header) map[string]string {
	m := map[string]string{}
	f := h.Fields()
	for f.Next() {
		k := fieldKey(f.Key())
		if _, seen := m[k]; !seen {
			m[k] = f.Value()
		}
	}
	return m
}

// firstText returns the first text/plain body in e, depth first.
func firstText(e *message.Entity) (string, error) {
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return "", nil
			}
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				return "", err
			}
			if s, err := firstText(part); err != nil || s != "" {
				return s, err
			}
		}
	}
	if ct, _, _ := e.Header.ContentType(); ct != "text/plain" && ct != "" {
		return "", nil
	}
	b, err := io.ReadAll(e.Body)
	return string(b), err
}

// readStatus splits the delivery-status body into its header-like blocks: the
// first is per-message, each further one describes a recipient (RFC 3464 §2.1).
func (p *Parsed) readStatus(body []byte) error {
	br := bufio.NewReader(bytes.NewReader(body))
	for {
		if _, err := br.Peek(1); err != nil {
			return nil
		}
		h, err := textproto.ReadHeader(br)
		if err != nil && err != io.EOF {
			return err
		}
		// Extra empty lines between blocks are read as empty blocks; skip them.
		if fields := firstValues(h); len(fields) > 0 {
			if p.PerMessage == nil {
				p.PerMessage = fields
			} else {
				p.Recipients = append(p.Recipients, fields)
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}
