package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// sampleClauses covers every verdict at least once.
var sampleClauses = []string{
	"SMTP-001", "SMTP-015", "RELAY-001", "RELAY-006", "DNS-010", "DNS-011",
	"ROUTE-001", "QUEUE-004", "QUEUE-012", "TRACE-003", "SEC-004",
}

const relayFailure = `RELAY-001: relay for a non-accepted domain must be refused at RCPT
Expected: 5yz reply with enhanced code 5.7.1 to RCPT TO:<user@remote.test>
Got:      250 2.1.5 Ok

SMTP exchange:
  S: 220 mx.local.test ESMTP
  C: EHLO client.test
  S: 250-mx.local.test
  S: 250 ENHANCEDSTATUSCODES
  C: MAIL FROM:<a@client.test>
  S: 250 2.1.0 Ok
  C: RCPT TO:<user@remote.test>
  S: 250 2.1.5 Ok`

// sampleRun is what a run against a Postfix-like target could report.
func sampleRun() types.Report {
	ms := time.Millisecond
	sec := entry(it("SEC-004 open-relay vectors", types.SpecStatePassed, 850*ms, "SEC-004", "security", "any-mta"),
		EntryVector, "percent-hack: PASS refused 554 5.7.1")
	sec = entry(sec, EntryVector, "bang-path: PASS refused 554 5.7.1")
	sec = entry(sec, EntryVector, "quoted-local: PASS\trefused 554 5.7.1")
	return run(
		it("SMTP-001 greets with 220", types.SpecStatePassed, 12*ms, "SMTP-001", "smtp", "any-mta"),
		it("SMTP-001 greeting within timeout", types.SpecStatePassed, 300*time.Microsecond, "SMTP-001", "smtp", "any-mta"),
		it("SMTP-015 advertises SIZE", types.SpecStatePassed, 20*ms, "SMTP-015", "smtp", "any-mta"),
		failed(it("SMTP-015 refuses oversize MAIL", types.SpecStateFailed, 1500*ms, "SMTP-015", "smtp", "any-mta"),
			"Expected: 552 5.3.4 to MAIL FROM:<a@client.test> SIZE=20000000\nGot:      250 2.1.0 Ok"),
		failed(it("RELAY-001 refuses relay", types.SpecStateFailed, 2*time.Second, "RELAY-001", "relay", "any-mta"), relayFailure),
		skipped(it("RELAY-006 AnonymousUsers connector", types.SpecStateSkipped, 0, "RELAY-006", "relay"),
			"N/A: reference-only clause (Exchange permission groups)"),
		entry(it("DNS-010 null MX", types.SpecStatePassed, 65*time.Second, "DNS-010", "dns", "any-mta"),
			EntryVerdict, "INFO: observed DSN Status 5.1.10 without connecting"),
		failed(it("DNS-011 null-MX sender", types.SpecStateFailed, 40*ms, "DNS-011", "dns", "any-mta"),
			"Expected: 550 5.7.27 to MAIL FROM:<a@nullmx.test>\nGot:      250 2.1.0 Ok"),
		it("QUEUE-004 retry interval", types.SpecStateSkipped, 0, "QUEUE-004", "queue", "any-mta"),
		it("QUEUE-012 shadow redundancy", types.SpecStatePending, 0, "QUEUE-012", "queue"),
		failed(it("TRACE-003 with keyword", types.SpecStateFailed, 30*ms, "TRACE-003", "trace", "any-mta"),
			"Expected: with ESMTPS after STARTTLS\nGot:      Received: from client.test ([127.200.0.9]) by mx (Postfix) with ESMTP"),
		sec,
		it("SEC-099 typo label", types.SpecStatePassed, ms, "SEC-099"),
	)
}

func sampleResult(t *testing.T) *Result {
	t.Helper()
	return Build("postfix", sampleRun(), clauses(t, sampleClauses...))
}

func TestSampleVerdicts(t *testing.T) {
	want := map[string]Verdict{
		"SMTP-001": PASS, "SMTP-015": FAIL, "RELAY-001": FAIL, "RELAY-006": NA, "DNS-010": INFO,
		"DNS-011": WARN, "ROUTE-001": MISSING, "QUEUE-004": MISSING, "QUEUE-012": MISSING,
		"TRACE-003": WARN, "SEC-004": PASS,
	}
	res := sampleResult(t)
	for _, c := range res.Clauses {
		if c.Verdict != want[c.Clause.ID] {
			t.Errorf("%s: %s, want %s (%s)", c.Clause.ID, c.Verdict, want[c.Clause.ID], c.Reason)
		}
	}
	if res.ExitCode(false) != 1 {
		t.Error("MUST failures must give exit code 1")
	}
}

func TestWriteTableGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult(t).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", buf.Bytes())
}

func TestWriteJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "result.json.golden", buf.Bytes())
}

func TestWriteJUnitGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleResult(t).WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	golden(t, "junit.xml.golden", buf.Bytes())
	// The output must be well-formed for CI parsers, whatever the golden says.
	var v struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("JUnit output does not parse: %v", err)
	}
	if v.Tests != len(sampleClauses) || v.Failures != 2 || v.Skipped != 4 || len(v.Suites) != 7 {
		t.Errorf("JUnit counts tests=%d failures=%d skipped=%d suites=%d", v.Tests, v.Failures, v.Skipped, len(v.Suites))
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := sampleResult(t)
	var buf bytes.Buffer
	if err := want.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the result:\ngot  %+v\nwant %+v", got, want)
	}
}

func TestReadJSONRejects(t *testing.T) {
	tests := map[string]string{
		"not JSON":     "{",
		"no schema":    `{"target":"x"}`,
		"other schema": `{"schema":"mailflow.report/v9","target":"x"}`,
	}
	for name, in := range tests {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("%s: ReadJSON accepted %q", name, in)
		}
	}
}

func TestTableTruncatesLongFailures(t *testing.T) {
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	sr := failed(it("long", types.SpecStateFailed, time.Millisecond, "SMTP-001"), strings.Join(lines, "\n"))
	var buf bytes.Buffer
	if err := Build("t", run(sr), clauses(t, "SMTP-001")).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "line 39\n") || strings.Contains(out, "line 40\n") || !strings.Contains(out, "... (61 more lines)") {
		t.Errorf("failure not cut at %d lines:\n%s", maxFailureLines, out)
	}
}

// secondResult is the reference topology: everything that ran passed.
func secondResult(t *testing.T) *Result {
	t.Helper()
	ms := time.Millisecond
	r := run(
		it("SMTP-001", types.SpecStatePassed, ms, "SMTP-001"),
		it("SMTP-015", types.SpecStatePassed, ms, "SMTP-015"),
		it("RELAY-001", types.SpecStatePassed, ms, "RELAY-001"),
		it("RELAY-006", types.SpecStatePassed, ms, "RELAY-006"),
		it("ROUTE-001", types.SpecStatePassed, ms, "ROUTE-001"),
		it("TRACE-003", types.SpecStatePassed, ms, "TRACE-003"),
		it("SEC-004", types.SpecStatePassed, ms, "SEC-004"),
	)
	// An older catalog without QUEUE-012 and with a clause the first lacks.
	return Build("reference|in-process", r, clauses(t,
		"SMTP-001", "SMTP-015", "RELAY-001", "RELAY-006", "DNS-010", "DNS-011",
		"ROUTE-001", "QUEUE-004", "TRACE-003", "SEC-004", "SEC-005"))
}

func TestMatrixGolden(t *testing.T) {
	m := Matrix([]*Result{sampleResult(t), secondResult(t)})
	if len(m.Rows) != len(sampleClauses)+1 || m.Rows[len(m.Rows)-1].Clause.ID != "SEC-005" {
		t.Fatalf("rows: %d, last %s", len(m.Rows), m.Rows[len(m.Rows)-1].Clause.ID)
	}
	for _, tt := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"matrix.md.golden", func(b *bytes.Buffer) error { return m.WriteMatrixMarkdown(b) }},
		{"matrix.html.golden", func(b *bytes.Buffer) error { return m.WriteMatrixHTML(b) }},
		{"matrix.txt.golden", func(b *bytes.Buffer) error { return m.WriteMatrixText(b) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.write(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

func TestJUnitSurvivesControlCharacters(t *testing.T) {
	sr := failed(it("ctl", types.SpecStateFailed, time.Millisecond, "SMTP-001"), "\x1b[31mExpected\x1b[0m 220\x00 ]]> got 554")
	var buf bytes.Buffer
	if err := Build("t", run(sr), clauses(t, "SMTP-001")).WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Suites []struct {
			Cases []struct {
				Failure struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("JUnit output does not parse: %v\n%s", err, buf.Bytes())
	}
	if got := v.Suites[0].Cases[0].Failure.Text; !strings.Contains(got, "\uFFFD[31mExpected\uFFFD[0m 220\uFFFD ]]> got 554") {
		t.Errorf("failure text %q", got)
	}
}
