package dsn

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	arrival = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	sent    = time.Date(2026, 11, 2, 10, 5, 0, 0, time.FixedZone("CET", 3600))
	orig    = []byte("From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: hi\r\n\r\nbody line\r\n")
)

// base is a valid one-recipient failed report; cases adjust a copy.
func base(rcpts ...Recipient) Report {
	if len(rcpts) == 0 {
		rcpts = []Recipient{{FinalRecipient: "Bob@Fabrikam.test", Action: Failed, Status: "5.1.1"}}
	}
	return Report{ReportingMTA: "edge1.contoso.test", From: "postmaster@contoso.test", To: "alice@contoso.test",
		ArrivalDate: arrival, Date: sent, Original: orig, Recipients: rcpts}
}

func TestBuildParseRoundTrip(t *testing.T) {
	retry := arrival.Add(48 * time.Hour)
	tests := []struct {
		name        string
		r           Report
		wantSubject string
		wantParts   string
		// want lists fields per block: "" means the field must be absent.
		wantPerMessage map[string]string
		want           []map[string]string
		check          func(t *testing.T, p *Parsed)
	}{
		{
			name: "failed with remote MTA",
			r: base(Recipient{FinalRecipient: "Bob@Fabrikam.test", Action: Failed, Status: "5.1.1",
				RemoteMTA: "smarthost.isp.test", DiagnosticCode: "550 5.1.1 User unknown", LastAttempt: arrival.Add(time.Minute)}),
			wantSubject:    "Delivery Status Notification (Failure)",
			wantParts:      "text/plain,message/delivery-status,message/rfc822",
			wantPerMessage: map[string]string{"Reporting-MTA": "dns; edge1.contoso.test", "Arrival-Date": "Mon, 02 Nov 2026 10:00:00 +0000", "Original-Envelope-Id": ""},
			want: []map[string]string{{"Final-Recipient": "rfc822; Bob@Fabrikam.test", "Action": "failed", "Status": "5.1.1",
				"Remote-MTA": "dns; smarthost.isp.test", "Diagnostic-Code": "smtp; 550 5.1.1 User unknown",
				"Last-Attempt-Date": "Mon, 02 Nov 2026 10:01:00 +0000", "Original-Recipient": "", "Will-Retry-Until": ""}},
			check: func(t *testing.T, p *Parsed) {
				if !bytes.Equal(p.Original, orig) {
					t.Errorf("original %q, want %q", p.Original, orig)
				}
				if !strings.Contains(p.HumanText, "Bob@Fabrikam.test") || !strings.Contains(p.HumanText, "550 5.1.1 User unknown") {
					t.Errorf("human text lacks recipient or diagnostic:\n%s", p.HumanText)
				}
			},
		},
		{
			name:        "failed locally has no Remote-MTA",
			r:           base(Recipient{FinalRecipient: "c@contoso.test", Action: Failed, Status: "5.1.1"}),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Final-Recipient": "rfc822; c@contoso.test", "Remote-MTA": "", "Diagnostic-Code": ""}},
		},
		{
			name: "delayed carries Will-Retry-Until",
			r: base(Recipient{FinalRecipient: "b@y.test", Action: Delayed, Status: "4.4.1", RemoteMTA: "mx.y.test",
				DiagnosticCode: "451 4.4.1 try later", WillRetryUntil: retry}),
			wantSubject: "Delivery Status Notification (Delay)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Action": "delayed", "Status": "4.4.1", "Will-Retry-Until": "Wed, 04 Nov 2026 10:00:00 +0000"}},
		},
		{
			name:        "failed never has Will-Retry-Until",
			r:           base(Recipient{FinalRecipient: "b@y.test", Action: Failed, Status: "4.4.7", WillRetryUntil: retry}),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Action": "failed", "Status": "4.4.7", "Will-Retry-Until": ""}},
		},
		{
			name:        "ORCPT present",
			r:           base(Recipient{FinalRecipient: "c@contoso.test", OriginalRecipient: "C.Alias@contoso.test", Action: Failed, Status: "5.1.1"}),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Original-Recipient": "rfc822; C.Alias@contoso.test", "Final-Recipient": "rfc822; c@contoso.test"}},
		},
		{
			name: "ENVID present",
			r: func() Report {
				r := base()
				r.EnvelopeID = "QQ314159"
				return r
			}(),
			wantSubject:    "Delivery Status Notification (Failure)",
			wantParts:      "text/plain,message/delivery-status,message/rfc822",
			wantPerMessage: map[string]string{"Original-Envelope-Id": "QQ314159"},
			want:           []map[string]string{{"Original-Recipient": ""}},
		},
		{
			name: "RET=HDRS returns the header without the body",
			r: func() Report {
				r := base()
				r.ReturnHeadersOnly = true
				return r
			}(),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,text/rfc822-headers",
			want:        []map[string]string{{"Action": "failed"}},
			check: func(t *testing.T, p *Parsed) {
				if want := "From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: hi\r\n"; string(p.Original) != want {
					t.Errorf("returned headers %q, want %q", p.Original, want)
				}
			},
		},
		{
			name: "one failure among delays is a failure notice, blocks in order",
			r: base(
				Recipient{FinalRecipient: "a@y.test", Action: Delayed, Status: "4.4.1", WillRetryUntil: retry},
				Recipient{FinalRecipient: "b@y.test", Action: Failed, Status: "5.2.2", RemoteMTA: "mx.y.test", DiagnosticCode: "552 5.2.2 mailbox full"},
			),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want: []map[string]string{
				{"Final-Recipient": "rfc822; a@y.test", "Remote-MTA": "", "Will-Retry-Until": "Wed, 04 Nov 2026 10:00:00 +0000"},
				{"Final-Recipient": "rfc822; b@y.test", "Remote-MTA": "dns; mx.y.test", "Will-Retry-Until": ""},
			},
		},
		{
			name:        "delivered is a success notice",
			r:           base(Recipient{FinalRecipient: "b@y.test", Action: Delivered, Status: "2.0.0", RemoteMTA: "mx.y.test"}),
			wantSubject: "Delivery Status Notification (Success)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Action": "delivered", "Status": "2.0.0"}},
		},
		{
			name: "multi-line reply is folded and LF original becomes CRLF",
			r: func() Report {
				r := base(Recipient{FinalRecipient: "b@y.test", Action: Failed, Status: "5.7.1", RemoteMTA: "mx.y.test",
					DiagnosticCode: "550-5.7.1 first line\r\n550 5.7.1 second line\r\n"})
				r.Original = []byte("Subject: lf\n\nbody\n")
				return r
			}(),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status,message/rfc822",
			want:        []map[string]string{{"Diagnostic-Code": "smtp; 550-5.7.1 first line 550 5.7.1 second line"}},
			check: func(t *testing.T, p *Parsed) {
				if string(p.Original) != "Subject: lf\r\n\r\nbody\r\n" {
					t.Errorf("original %q", p.Original)
				}
			},
		},
		{
			name: "no original gives two parts",
			r: func() Report {
				r := base()
				r.Original = nil
				return r
			}(),
			wantSubject: "Delivery Status Notification (Failure)",
			wantParts:   "text/plain,message/delivery-status",
			want:        []map[string]string{{"Action": "failed"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if bare := bytes.Count(b, []byte("\n")) - bytes.Count(b, []byte("\r\n")); bare != 0 {
				t.Errorf("%d bare LFs in:\n%s", bare, b)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.ContentType != "multipart/report" || p.ReportType != "delivery-status" {
				t.Errorf("content type %s report-type %q", p.ContentType, p.ReportType)
			}
			if got := strings.Join(p.PartTypes, ","); got != tc.wantParts {
				t.Errorf("parts %s, want %s", got, tc.wantParts)
			}
			wantHeader := map[string]string{
				"From": "postmaster@contoso.test", "To": "alice@contoso.test", "Subject": tc.wantSubject,
				"Date": "Mon, 02 Nov 2026 10:05:00 +0100", "MIME-Version": "1.0", "Auto-Submitted": "auto-replied",
			}
			for k, v := range wantHeader {
				if got := Field(p.Header, k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if id := Field(p.Header, "Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@edge1.contoso.test>") {
				t.Errorf("generated Message-ID %q", id)
			}
			for k, v := range tc.wantPerMessage {
				if got := Field(p.PerMessage, k); got != v {
					t.Errorf("per-message %s = %q, want %q (all: %v)", k, got, v, p.PerMessage)
				}
			}
			if len(p.Recipients) != len(tc.r.Recipients) {
				t.Fatalf("%d recipient blocks, want %d", len(p.Recipients), len(tc.r.Recipients))
			}
			for i, want := range tc.want {
				for k, v := range want {
					if got := Field(p.Recipients[i], k); got != v {
						t.Errorf("block %d %s = %q, want %q (all: %v)", i, k, got, v, p.Recipients[i])
					}
				}
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// TestGolden keeps one DSN of each kind as a file a mail client can open, and reads
// each back with go-message: a multipart/report whose second part is the
// delivery-status (DSN-003).
func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		rc   Recipient
	}{
		{"failed.golden", Recipient{FinalRecipient: "bob@fabrikam.test", OriginalRecipient: "Bob.Alias@fabrikam.test", Action: Failed, Status: "5.1.1",
			RemoteMTA: "smarthost.isp.test", DiagnosticCode: "550 5.1.1 User unknown", LastAttempt: arrival.Add(time.Minute)}},
		{"delayed.golden", Recipient{FinalRecipient: "bob@fabrikam.test", Action: Delayed, Status: "4.2.1",
			RemoteMTA: "mx1.fabrikam.test", DiagnosticCode: "451 4.2.1 Mailbox busy", LastAttempt: arrival.Add(4 * time.Hour),
			WillRetryUntil: arrival.Add(48 * time.Hour)}},
		{"delivered.golden", Recipient{FinalRecipient: "alice@contoso.test", Action: Delivered, Status: "2.0.0"}},
		{"relayed.golden", Recipient{FinalRecipient: "bob@fabrikam.test", Action: Relayed, Status: "2.0.0", RemoteMTA: "mx1.fabrikam.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r := base(tc.rc)
			r.Date = arrival.Add(5 * time.Minute)
			r.EnvelopeID = "QQ314159"
			r.MessageID = "dsn-1@edge1.contoso.test"
			r.boundary = "=_dsn-golden-boundary"
			b, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			path := "testdata/" + tc.file
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("DSN differs from %s (check, then run with -update):\n%s", path, b)
			}
			p, err := Parse(want)
			if err != nil {
				t.Fatalf("%s does not parse: %v", path, err)
			}
			if p.ContentType != "multipart/report" || p.ReportType != "delivery-status" || len(p.PartTypes) < 2 || p.PartTypes[1] != "message/delivery-status" {
				t.Errorf("%s: %s report-type=%s parts %v, want multipart/report; report-type=delivery-status with message/delivery-status second",
					path, p.ContentType, p.ReportType, p.PartTypes)
			}
			if len(p.Recipients) != 1 || !strings.EqualFold(Field(p.Recipients[0], "Action"), string(tc.rc.Action)) {
				t.Errorf("%s: recipient blocks %v, want one with Action %s", path, p.Recipients, tc.rc.Action)
			}
			if got := Field(p.Recipients[0], "Will-Retry-Until"); (got != "") != (tc.rc.Action == Delayed) {
				t.Errorf("%s: Will-Retry-Until %q: only a delayed DSN carries one (DSN-009)", path, got)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	rc := func(a Action, status string) Report {
		return base(Recipient{FinalRecipient: "a@b.test", Action: a, Status: status})
	}
	with := func(f func(*Report)) Report {
		r := base()
		f(&r)
		return r
	}
	tests := []struct {
		name, want string
		r          Report
	}{
		{"no recipients", "no recipients", with(func(r *Report) { r.Recipients = nil })},
		{"failed with class 2", "does not fit action failed", rc(Failed, "2.0.0")},
		{"delayed with class 5", "does not fit action delayed", rc(Delayed, "5.1.1")},
		{"delivered with class 5", "does not fit action delivered", rc(Delivered, "5.0.0")},
		{"relayed with class 4", "does not fit action relayed", rc(Relayed, "4.0.0")},
		{"expanded with class 5", "does not fit action expanded", rc(Expanded, "5.0.0")},
		{"two-part status", "not class.subject.detail", rc(Failed, "5.1")},
		{"four-digit detail", "not class.subject.detail", rc(Failed, "5.1.1000")},
		{"class 3", "not class.subject.detail", rc(Failed, "3.1.1")},
		{"two-digit class", "not class.subject.detail", rc(Failed, "55.1.1")},
		{"reply as status", "not class.subject.detail", rc(Failed, "550")},
		{"unknown action", "unknown action", rc("bounced", "5.1.1")},
		{"null sender", "To is empty", with(func(r *Report) { r.To = "" })},
		{"no reporting MTA", "ReportingMTA is empty", with(func(r *Report) { r.ReportingMTA = "" })},
		{"no from", "From is empty", with(func(r *Report) { r.From = "" })},
		{"no final recipient", "FinalRecipient is empty", with(func(r *Report) { r.Recipients[0].FinalRecipient = "" })},
		{"injected ENVID", "line break", with(func(r *Report) { r.EnvelopeID = "x\r\nBcc: evil@x.test" })},
		{"injected remote MTA", "line break", with(func(r *Report) { r.Recipients[0].RemoteMTA = "mx\r\n\r\nFinal-Recipient: x" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(tc.r)
			if err == nil {
				t.Fatalf("accepted, built:\n%s", b)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBoundaryIsRandomWhenUnset(t *testing.T) {
	a, err := Build(base())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(base())
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := Parse(a)
	pb, _ := Parse(b)
	if ca, cb := pa.Header["Content-Type"], pb.Header["Content-Type"]; ca == cb || !strings.Contains(ca, "boundary=") {
		t.Errorf("boundaries not random: %q and %q", ca, cb)
	}
	if pa.Header["Message-Id"] == pb.Header["Message-Id"] {
		t.Errorf("generated Message-IDs collide: %q", pa.Header["Message-Id"])
	}
}

// TestParseForeign reads a DSN in another MTA's dialect: LF endings, the human part
// as multipart/alternative, extra blank lines, folded fields, no final line break.
func TestParseForeign(t *testing.T) {
	msg, err := os.ReadFile("testdata/foreign.eml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.PartTypes, ","); got != "multipart/alternative,message/delivery-status,text/rfc822-headers" {
		t.Errorf("parts %s", got)
	}
	if !strings.Contains(p.HumanText, "bob@fabrikam.test \u2014 sorry") {
		t.Errorf("human text %q", p.HumanText)
	}
	if p.Header["Message-Id"] != "<ndr-7@fabrikam.test>" || p.ReportType != "delivery-status" {
		t.Errorf("header %v report-type %q", p.Header, p.ReportType)
	}
	if got := Field(p.PerMessage, "Reporting-MTA"); got != "dns;mbx1.fabrikam.test" {
		t.Errorf("Reporting-MTA %q", got)
	}
	if len(p.Recipients) != 2 {
		t.Fatalf("blocks %v", p.Recipients)
	}
	if got := Field(p.Recipients[0], "diagnostic-code"); got != "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup" {
		t.Errorf("Diagnostic-Code %q", got)
	}
	if got := p.Recipients[1]["Status"]; got != "5.2.2" {
		t.Errorf("last block's last field %q", got)
	}
	if !strings.HasPrefix(string(p.Original), "From: alice@contoso.test") {
		t.Errorf("original %q", p.Original)
	}
}

func TestParseRejectsNonMultipart(t *testing.T) {
	if _, err := Parse([]byte("From: a@b.test\r\nSubject: x\r\n\r\nhello\r\n")); err == nil {
		t.Error("parsed a plain text message as a DSN")
	}
}

func TestFieldAnySpelling(t *testing.T) {
	p, err := Parse([]byte("Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"reporting-MTA: dns; a.test\r\nX\"quoted\"-name: 1\r\nx(C)-y: 2\r\n--b--\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"Reporting-MTA", "dns; a.test"}, {"reporting-mta", "dns; a.test"},
		{"x\"QUOTED\"-NAME", "1"}, {"X\"quoted\"-Name", "1"}, {"X(c)-Y", "2"},
	} {
		if got := Field(p.PerMessage, tt.name); got != tt.want {
			t.Errorf("Field(%q) = %q, want %q (fields %q)", tt.name, got, tt.want, p.PerMessage)
		}
	}
}
