package compose

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"github.com/mailflow/mailflow/scenario"
)

func TestMessage(t *testing.T) {
	base := scenario.Message{From: "bob@fabrikam.test", To: []string{"alice@contoso.test"}}
	tests := []struct {
		name string
		m    func(m scenario.Message) scenario.Message
		// body is the text part as read back; attachments the files (name: content).
		body        string
		attachments map[string][]byte
	}{
		{"default", func(m scenario.Message) scenario.Message { return m }, DefaultBody, nil},
		{"body, LF lines", func(m scenario.Message) scenario.Message { m.Body = "one\ntwo"; return m }, "one\r\ntwo\r\n", nil},
		{"size", func(m scenario.Message) scenario.Message { m.Size = 200; return m }, string(Text(200)), nil},
		{"attachments", func(m scenario.Message) scenario.Message {
			m.Body = "see attached"
			m.Attachments = []scenario.Attachment{{Name: "a.bin", ContentType: "application/octet-stream", Size: 1000}, {Name: "n.txt", ContentType: "text/plain", Content: "few bytes"}}
			return m
		}, "see attached\r\n", map[string][]byte{"a.bin": Bytes(1000), "n.txt": []byte("few bytes")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Message(tt.m(base), "x@mailflow.invalid")
			if err != nil {
				t.Fatal(err)
			}
			r, err := mail.CreateReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if id, _ := r.Header.MessageID(); id != "x@mailflow.invalid" {
				t.Errorf("Message-ID %q", id)
			}
			var body string
			got := map[string][]byte{}
			for {
				p, err := r.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				content, _ := io.ReadAll(p.Body)
				switch h := p.Header.(type) {
				case *mail.AttachmentHeader:
					name, _ := h.Filename()
					got[name] = content
				default:
					body = string(content)
				}
			}
			if body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if len(got) != len(tt.attachments) {
				t.Errorf("%d attachments, want %d", len(got), len(tt.attachments))
			}
			for name, want := range tt.attachments {
				if !bytes.Equal(got[name], want) {
					t.Errorf("attachment %s: %d octets, want %d as generated", name, len(got[name]), len(want))
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 79, 80, 81, 10000} {
		b := Text(n)
		if len(b) != n {
			t.Errorf("Text(%d) is %d octets", n, len(b))
		}
		for _, l := range strings.Split(string(b), "\r\n") {
			if len(l) > 78 {
				t.Errorf("Text(%d) has a line of %d octets", n, len(l))
			}
		}
	}
}
