package attachfilter_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/attachfilter"
)

const exe = "MZ\x90\x00 not really a program"

func mixed(parts ...string) string {
	s := "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n"
	for _, p := range parts {
		s += "--b1\r\n" + p + "\r\n"
	}
	return s + "--b1--\r\n"
}

const text = "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9, see the attachment.\r\n"

func attachment(name, ctype, cte, body string) string {
	if cte == "base64" {
		body = base64.StdEncoding.EncodeToString([]byte(body))
	}
	return "Content-Type: " + ctype + "\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body + "\r\n"
}

func rfc822(cte, inner string) string {
	if cte == "base64" {
		inner = base64.StdEncoding.EncodeToString([]byte(inner))
	}
	return "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + inner
}

func TestScan(t *testing.T) {
	inner := mixed(text, attachment("setup.EXE", "application/octet-stream", "base64", exe))
	inner = strings.ReplaceAll(inner, "b1", "b2")
	msg := mixed(text, rfc822("base64", inner), attachment("report.pdf", "application/pdf", "quoted-printable", "%PDF"))
	parts, err := attachfilter.Scan([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		got = append(got, p.Path+" "+p.Type+" "+p.Name)
	}
	want := []string{"1 text/plain ", "2.1 text/plain ", "2.2 application/octet-stream setup.EXE", "3 application/pdf report.pdf"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Scan:\n got %q\nwant %q", got, want)
	}
}

func run(t *testing.T, f *attachfilter.Filter, data string) (*agents.Message, error) {
	t.Helper()
	ctx := context.Background()
	s, err := agents.New("EDGE1", []agents.Agent{f}).Connect(ctx, agents.Conn{})
	if err != nil {
		t.Fatal(err)
	}
	m := &agents.Message{From: "bob@fabrikam.test", Rcpts: []string{"alice@contoso.test"}, Data: []byte(data)}
	return m, s.EndOfData(ctx, m)
}

func TestActions(t *testing.T) {
	names := attachfilter.WithBlockedNames("*.exe")
	types := attachfilter.WithBlockedTypes("application/x-msdownload")
	for _, tc := range []struct {
		name string
		msg  string
		want string // "550 5.7.1", "pass"
	}{
		{"exe in multipart/mixed", mixed(text, attachment("a.exe", "application/octet-stream", "base64", exe)), "550"},
		{"EXE in upper case", mixed(attachment("A.EXE", "application/octet-stream", "base64", exe)), "550"},
		{"exe in a quoted-printable part", mixed(attachment("a.exe", "application/octet-stream", "quoted-printable", "MZ=90")), "550"},
		{"exe in a base64 message/rfc822", mixed(text, rfc822("base64", strings.ReplaceAll(mixed(attachment("x.exe", "application/octet-stream", "base64", exe)), "b1", "b9"))), "550"},
		{"exe in a plain message/rfc822", mixed(rfc822("7bit", strings.ReplaceAll(mixed(attachment("x.exe", "application/octet-stream", "base64", exe)), "b1", "b9"))), "550"},
		{"blocked type, no name", mixed("Content-Type: application/x-msdownload\r\n\r\nMZ\r\n"), "550"},
		{"name in Content-Type only", mixed("Content-Type: application/octet-stream; name=\"b.exe\"\r\n\r\nMZ\r\n"), "550"},
		{"RFC 2231 name", mixed("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.exe\r\n\r\nMZ\r\n"), "550"},
		{"pdf passes", mixed(text, attachment("a.pdf", "application/pdf", "base64", "%PDF")), "pass"},
		{"exe.pdf passes", mixed(attachment("a.exe.pdf", "application/pdf", "base64", "%PDF")), "pass"},
		{"plain text passes", "Subject: hi\r\n\r\nhello\r\n", "pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, attachfilter.New(names, types), tc.msg)
			var se *smtp.SMTPError
			switch {
			case tc.want == "pass" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "pass" && (!errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != smtp.EnhancedCode{5, 7, 1}):
				t.Fatalf("got %v, want 550 5.7.1", err)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	pdf := attachment("a.pdf", "application/pdf", "base64", "%PDF-1.4 body")
	msg := mixed(text, attachment("a.exe", "application/octet-stream", "base64", exe), pdf)
	m, err := run(t, attachfilter.New(attachfilter.WithBlockedNames("*.exe"), attachfilter.WithAction(attachfilter.Strip)), msg)
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.Data)
	if strings.Contains(got, "a.exe\"") || strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(exe))) {
		t.Errorf("the attachment is still there:\n%s", got)
	}
	for _, keep := range []string{"Subject: files\r\n", "--b1\r\n" + text + "\r\n--b1\r\n", "--b1\r\n" + pdf + "\r\n--b1", "removed from this message: a.exe.", "--b1--\r\n"} {
		if !strings.Contains(got, keep) {
			t.Errorf("stripped message lacks %q:\n%s", keep, got)
		}
	}
	parts, err := attachfilter.Scan(m.Data)
	if err != nil || len(parts) != 3 {
		t.Errorf("stripped message's parts: %v, %v", parts, err)
	}

	// Inside a base64 message/rfc822 too.
	inner := strings.ReplaceAll(mixed(text, attachment("x.exe", "application/octet-stream", "base64", exe)), "b1", "b9")
	m, err = run(t, attachfilter.New(attachfilter.WithBlockedNames("*.exe"), attachfilter.WithAction(attachfilter.Strip)), mixed(text, rfc822("base64", inner)))
	if err != nil {
		t.Fatal(err)
	}
	parts, err = attachfilter.Scan(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if p.Name == "x.exe" {
			t.Errorf("x.exe still in the attached message: %v", parts)
		}
	}
	if !strings.Contains(string(m.Data), "removed from this message: x.exe.") {
		t.Errorf("no notice:\n%s", m.Data)
	}
}

func TestSilentDelete(t *testing.T) {
	_, err := run(t, attachfilter.New(attachfilter.WithBlockedNames("*.exe"), attachfilter.WithAction(attachfilter.SilentDelete)),
		mixed(attachment("a.exe", "application/octet-stream", "base64", exe)))
	if !errors.Is(err, agents.ErrDropped) {
		t.Fatalf("got %v, want the message dropped", err)
	}
}

func FuzzScan(f *testing.F) {
	inner := strings.ReplaceAll(mixed(text, attachment("x.exe", "application/octet-stream", "base64", exe)), "b1", "b9")
	f.Add([]byte(mixed(text, rfc822("base64", inner))))
	f.Add([]byte(mixed(attachment("a.exe", "application/octet-stream", "quoted-printable", "MZ=90"))))
	f.Add([]byte("Subject: hi\r\n\r\nhello\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"))
	flt := attachfilter.New(attachfilter.WithBlockedNames("*.exe"), attachfilter.WithAction(attachfilter.Strip))
	f.Fuzz(func(t *testing.T, data []byte) {
		parts, err := attachfilter.Scan(data)
		if err != nil {
			return
		}
		ctx := context.Background()
		s, _ := agents.New("EDGE1", []agents.Agent{flt}).Connect(ctx, agents.Conn{})
		m := &agents.Message{Data: data}
		if err := s.EndOfData(ctx, m); err != nil {
			t.Fatalf("Strip refused a message Scan read: %v", err)
		}
		blocked := false
		for _, p := range parts {
			blocked = blocked || flt.Blocked(p) != ""
		}
		if !blocked {
			return
		}
		after, err := attachfilter.Scan(m.Data)
		if err != nil {
			t.Fatalf("the stripped message does not scan: %v\n%q", err, m.Data)
		}
		for _, p := range after {
			if flt.Blocked(p) != "" {
				t.Fatalf("%s left in the stripped message %q", p.Name, m.Data)
			}
		}
	})
}
