package dsn

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	arrival = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	sent    = time.Date(2026, 11, 2, 10, 5, 0, 0, time.UTC)
	orig    = []byte("From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: hi\r\n\r\nbody line\r\n")
)

func TestBuildParseRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		r         Report
		wantParts []string
		check     func(t *testing.T, p *Parsed)
	}{
		{"failed with remote MTA", Report{ReportingMTA: "edge1.contoso.test", From: "postmaster@contoso.test", To: "alice@contoso.test",
			ArrivalDate: arrival, Date: sent, Original: orig, Recipients: []Recipient{{FinalRecipient: "Bob@fabrikam.test", Action: Failed, Status: "5.1.1", RemoteMTA: "smarthost.isp.test", DiagnosticCode: "550 5.1.1 no such user"}}},
			[]string{"text/plain", "message/delivery-status", "message/rfc822"},
			func(t *testing.T, p *Parsed) {
				b := p.Recipients[0]
				if b["Final-Recipient"] != "rfc822; Bob@fabrikam.test" || b["Remote-Mta"] != "dns; smarthost.isp.test" || b["Diagnostic-Code"] != "smtp; 550 5.1.1 no such user" || b["Will-Retry-Until"] != "" {
					t.Errorf("block %v", b)
				}
				if p.PerMessage["Reporting-Mta"] != "dns; edge1.contoso.test" || p.PerMessage["Original-Envelope-Id"] != "" {
					t.Errorf("per-message %v", p.PerMessage)
				}
			}},
		{"failed locally has no Remote-MTA, ORCPT and ENVID kept", Report{ReportingMTA: "hub1.contoso.test", From: "postmaster@contoso.test", To: "a@x.test",
			EnvelopeID: "env-1", Original: orig, Recipients: []Recipient{{FinalRecipient: "c@contoso.test", OriginalRecipient: "C.Alias@contoso.test", Action: Failed, Status: "5.1.1"}}},
			[]string{"text/plain", "message/delivery-status", "message/rfc822"},
			func(t *testing.T, p *Parsed) {
				b := p.Recipients[0]
				if _, ok := b["Remote-Mta"]; ok {
					t.Errorf("Remote-MTA present without a remote MTA: %v", b)
				}
				if b["Original-Recipient"] != "rfc822; C.Alias@contoso.test" || p.PerMessage["Original-Envelope-Id"] != "env-1" {
					t.Errorf("block %v per-message %v", b, p.PerMessage)
				}
			}},
		{"delayed carries Will-Retry-Until, headers only", Report{ReportingMTA: "edge1.contoso.test", From: "postmaster@contoso.test", To: "a@x.test",
			Original: orig, ReturnHeadersOnly: true, Recipients: []Recipient{{FinalRecipient: "b@y.test", Action: Delayed, Status: "4.4.1", WillRetryUntil: arrival.Add(48 * time.Hour)}}},
			[]string{"text/plain", "message/delivery-status", "text/rfc822-headers"},
			func(t *testing.T, p *Parsed) {
				if p.Recipients[0]["Will-Retry-Until"] == "" || strings.Contains(string(p.Original), "body line") {
					t.Errorf("block %v original %q", p.Recipients[0], p.Original)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if p.ContentType != "multipart/report" || p.ReportType != "delivery-status" || strings.Join(p.PartTypes, ",") != strings.Join(tc.wantParts, ",") {
				t.Fatalf("structure %s %s %v", p.ContentType, p.ReportType, p.PartTypes)
			}
			if len(p.Recipients) != len(tc.r.Recipients) {
				t.Fatalf("%d blocks", len(p.Recipients))
			}
			tc.check(t, p)
		})
	}
}

func TestGolden(t *testing.T) {
	b, err := Build(Report{ReportingMTA: "edge1.contoso.test", From: "postmaster@contoso.test", To: "alice@contoso.test",
		ArrivalDate: arrival, Date: sent, MessageID: "dsn-1@edge1.contoso.test", Original: orig, boundary: "BOUNDARY",
		Recipients: []Recipient{{FinalRecipient: "bob@fabrikam.test", Action: Failed, Status: "5.1.1", RemoteMTA: "smarthost.isp.test", DiagnosticCode: "550 5.1.1 no such user"}}})
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/failed.golden"
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Errorf("DSN differs from %s (run with -update after checking):\n%s", path, b)
	}
}

func TestValidation(t *testing.T) {
	bad := []Recipient{
		{FinalRecipient: "a@b.test", Action: Failed, Status: "2.0.0"},
		{FinalRecipient: "a@b.test", Action: Delayed, Status: "5.1.1"},
		{FinalRecipient: "a@b.test", Action: Failed, Status: "5.1"},
		{FinalRecipient: "a@b.test", Action: "bounced", Status: "5.1.1"},
	}
	for _, rc := range bad {
		if _, err := Build(Report{ReportingMTA: "m", Recipients: []Recipient{rc}}); err == nil {
			t.Errorf("accepted %+v", rc)
		}
	}
	if _, err := Build(Report{ReportingMTA: "m"}); err == nil {
		t.Error("accepted a DSN without recipients")
	}
}
