package imapd

// SEARCH matching follows go-imap's imapmemserver (MIT licence), over a message read
// from its Maildir file only when a criterion needs its bytes.

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

type searchMsg struct {
	uid   imap.UID
	flags []imap.Flag
	load  func() ([]byte, time.Time)

	loaded bool
	data   []byte
	date   time.Time
}

func (m *searchMsg) bytes() ([]byte, time.Time) {
	if !m.loaded {
		m.data, m.date = m.load()
		m.loaded = true
	}
	return m.data, m.date
}

func (m *searchMsg) entity() *gomessage.Entity {
	data, _ := m.bytes()
	e, _ := gomessage.Read(bytes.NewReader(data))
	if e == nil {
		e, _ = gomessage.New(gomessage.Header{}, bytes.NewReader(nil))
	}
	return e
}

func (m *searchMsg) hasFlag(f imap.Flag) bool {
	for _, g := range m.flags {
		if strings.EqualFold(string(f), string(g)) {
			return true
		}
	}
	return false
}

func (m *searchMsg) match(seq uint32, c *imap.SearchCriteria) bool {
	for _, set := range c.SeqNum {
		if seq == 0 || !set.Contains(seq) {
			return false
		}
	}
	for _, set := range c.UID {
		if !set.Contains(m.uid) {
			return false
		}
	}
	for _, f := range c.Flag {
		if !m.hasFlag(f) {
			return false
		}
	}
	for _, f := range c.NotFlag {
		if m.hasFlag(f) {
			return false
		}
	}
	if !c.Since.IsZero() || !c.Before.IsZero() {
		_, date := m.bytes()
		if !matchDate(date, c.Since, c.Before) {
			return false
		}
	}
	if c.Larger != 0 || c.Smaller != 0 {
		data, _ := m.bytes()
		n := int64(len(data))
		if c.Larger != 0 && n <= c.Larger || c.Smaller != 0 && n >= c.Smaller {
			return false
		}
	}
	if len(c.Header) > 0 || !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		data, _ := m.bytes()
		h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
		header := mail.Header{Header: gomessage.Header{Header: h}}
		for _, fc := range c.Header {
			if !matchFields(header.FieldsByKey(fc.Key), fc.Value) {
				return false
			}
		}
		if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
			t, err := header.Date()
			if err != nil || !matchDate(t, c.SentSince, c.SentBefore) {
				return false
			}
		}
	}
	for _, text := range c.Text {
		if !matchEntity(m.entity(), text, true) {
			return false
		}
	}
	for _, body := range c.Body {
		if !matchEntity(m.entity(), body, false) {
			return false
		}
	}
	for i := range c.Not {
		if m.match(seq, &c.Not[i]) {
			return false
		}
	}
	for i := range c.Or {
		if !m.match(seq, &c.Or[i][0]) && !m.match(seq, &c.Or[i][1]) {
			return false
		}
	}
	return true
}

// matchDate compares days without their zones, as RFC 3501 §6.4.4 asks.
func matchDate(t, since, before time.Time) bool {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && t.Before(since) {
		return false
	}
	return before.IsZero() || t.Before(before)
}

func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, _ := fields.Text()
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

func matchEntity(e *gomessage.Entity, pattern string, withHeader bool) bool {
	if pattern == "" {
		return true
	}
	if withHeader && matchFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(part, pattern, withHeader) {
				return true
			}
		}
	}
	t, _, err := e.Header.ContentType()
	if e.Header.Get("Content-Type") == "" {
		t, err = "text/plain", nil // RFC 2045 §5.2's default
	}
	if err != nil || !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(e.Body, 64<<20))
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ToLower(buf), bytes.ToLower([]byte(pattern)))
}

func envelope(data []byte) *imap.Envelope {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil
	}
	return imapserver.ExtractEnvelope(h)
}
