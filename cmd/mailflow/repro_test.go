package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/scenario"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// capture runs f with stdout redirected and returns what it printed.
func capture(t *testing.T, f func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	code := f()
	w.Close()
	os.Stdout = old
	return <-done, code
}

func TestRepro(t *testing.T) {
	diamond, err := os.ReadFile("../../scenarios/diamond.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fanout, err := os.ReadFile("../../scenarios/fanout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	backoff, err := os.ReadFile("../../scenarios/backoff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	noFiltering, err := os.ReadFile("../../scenarios/no-filtering.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Amsterdam-Zurich dearer: the tie is gone and the path flips to Brussels.
	flipped := strings.Replace(string(diamond), "{sites: [amsterdam, zurich], cost: 10}", "{sites: [amsterdam, zurich], cost: 11}", 1)
	tests := []struct {
		name     string
		file     string
		code     int
		contains []string
	}{
		{"tie broken by site name, expect holds", "../../scenarios/diamond.yaml", 0,
			[]string{"path zoe@contoso.test: EDGE1 -> HUB-LON -> HUB-AMS -> HUB-ZRH -> MBX-ZRH:zoe", "decided by lowest site name nearest the destination", "expect path: ok"}},
		{"one cost changed: the other path, the rule that decides, expect fails", write("flipped.yaml", flipped), 1,
			[]string{"path zoe@contoso.test: EDGE1 -> HUB-LON -> HUB-BRU -> HUB-ZRH -> MBX-ZRH:zoe", "decided by least cost",
				"expect path: MISMATCH", "expected: EDGE1 -> HUB-LON -> HUB-AMS -> HUB-ZRH -> MBX-ZRH:zoe", "actual:   EDGE1 -> HUB-LON -> HUB-BRU -> HUB-ZRH -> MBX-ZRH:zoe"}},
		{"hub site on the path", "../../scenarios/three-sites-hub.yaml", 0,
			[]string{"path bob@contoso.test: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER:bob", "relay via paris -> berlin"}},
		{"send connectors: out through the chosen connector's source and smart host", "../../scenarios/connectors.yaml", 0,
			[]string{"path sales@litware.test: EDGE1 -> HUB-LON -> HUB-PAR -> paris.isp.test (Litware Paris)", "lowest aggregate cost 6"}},
		{"forwarding", "../../scenarios/tracking.yaml", 0,
			[]string{"path carol@contoso.test: EDGE1 -> HUB-LON -> MBX-LON:carol", "REDIRECT"}},
		{"a message split at a hub site: each recipient's path has only its own copy's hops; an unknown recipient refused at RCPT, the others delivered",
			"../../scenarios/fanout.yaml", 0,
			[]string{"path bob@contoso.test: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER:bob",
				"path petra@contoso.test: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-PRG -> MBX-PRG:petra",
				"RCPT nobody@contoso.test: 550 5.1.1 User unknown", "RCPT petra@contoso.test: accepted",
				"path carol@contoso.test: EDGE1 -> HUB-LON -> HUB-MAD -> MBX-MAD:carol", "expect rejected: ok"}},
		{"rejected: a basic code alone", write("basic.yaml", strings.Replace(string(fanout), `rejected: "5.1.1"`, `rejected: "550"`, 1)), 0,
			[]string{"expect rejected: ok"}},
		{"rejected: both codes", write("both.yaml", strings.Replace(string(fanout), `rejected: "5.1.1"`, `rejected: "550 5.1.1"`, 1)), 0,
			[]string{"expect rejected: ok"}},
		{"rejected: another enhanced code does not match", write("other.yaml", strings.Replace(string(fanout), `rejected: "5.1.1"`, `rejected: "5.7.1"`, 1)), 1,
			[]string{"expect rejected: MISMATCH", "expected: 5.7.1", "actual:   nobody@contoso.test: 550 5.1.1 User unknown"}},
		{"rejected: nothing refused", write("none.yaml", strings.Replace(string(fanout), "to: [nobody@contoso.test, ", "to: [", 1)), 1,
			[]string{"expect rejected: MISMATCH", "actual:   (accepted)"}},
		{"every recipient refused: no data sent", write("all.yaml", strings.Replace(string(fanout), "to: [nobody@contoso.test, petra@contoso.test, carol@contoso.test]", "to: [nobody@contoso.test]", 1)), 1,
			[]string{"RCPT nobody@contoso.test: 550 5.1.1 User unknown", "expect rejected: ok", "expect delivered MBX-PRG/petra: MISMATCH"}},
		{"the path of the other recipient's copy is not this one's", write("crossed.yaml", strings.Replace(string(fanout),
			"- EDGE1 -> HUB-LON -> HUB-PAR -> HUB-PRG -> MBX-PRG:petra\n        - EDGE1 -> HUB-LON -> HUB-MAD", "- EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> HUB-PRG -> MBX-PRG:petra\n        - EDGE1 -> HUB-LON -> HUB-MAD", 1)), 1,
			[]string{"expect path[0]: MISMATCH", "expected: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> HUB-PRG -> MBX-PRG:petra"}},
		{"an NDR: the message's routes, the NDR's own apart, ORCPT as the client wrote it", "../../scenarios/no-filtering.yaml", 0,
			[]string{"path nobody@contoso.test: EDGE1 -> HUB-LON -> failed: 550 5.1.1 no recipient with this address",
				"recipient Nobody@contoso.test: failed 5.1.1, ORCPT Nobody@Contoso.TEST",
				"ndr path: HUB-LON -> EDGE1 -> smarthost.isp.test (To Internet)",
				"  route HUB-LON: mailbox on MBX-LON in the Hub's own site london: local delivery\n  ndr from HUB-LON"}},
		{"timeline: Berlin's Hub down, the message waits in Madrid and is retried, the Hub back, delivered", "../../scenarios/backoff.yaml", 0,
			[]string{"timeline:\n  +0s       start\n  +0s       HUB-BER down\n  +0s       message 1 sent\n",
				"  +0s       advance 1h0m0s\n    +5m0s     HUB-MAD  ROUTE ", "    +30m0s    HUB-MAD  DEFER ", "    +40m0s    HUB-MAD  DEFER ",
				"  +1h0m0s   HUB-BER up\n  +1h0m0s   advance 10m0s\n", "    +1h10m0s  MBX-BER  DELIVER    bob@contoso.test",
				"  +1h10m0s  end\n", "path bob@contoso.test: EDGE1 -> HUB-LON -> HUB-MAD -> HUB-BER -> MBX-BER:bob", "expect path: ok", "expect delivered MBX-BER/bob: ok"}},
		{"timeline: the Hub never comes back: held in Madrid, expectations fail", write("no-up.yaml", strings.Replace(string(backoff), "  - up: HUB-BER\n", "", 1)), 1,
			[]string{"held bob@contoso.test: EDGE1 -> HUB-LON -> HUB-MAD; last attempt: 451 4.4.1 Connection to ", "expect path: MISMATCH",
				"actual:   held: EDGE1 -> HUB-LON -> HUB-MAD; last attempt: 451 4.4.1 ", "expect delivered MBX-BER/bob: MISMATCH"}},
		{"timeline: the Hub back but no time passes: held until Madrid's next retry", write("no-wait.yaml", strings.Replace(string(backoff), "  - advance: 10m\n", "", 1)), 1,
			[]string{"  +1h0m0s   HUB-BER up\n  +1h0m0s   end\n", "expect delivered MBX-BER/bob: MISMATCH"}},
		{"timeline: a fake host that defers, then accepts: the NDR waits at the Edge, then leaves", write("host.yaml", string(noFiltering)+`timeline:
  - host: {name: smarthost.isp.test, behaviour: {action: defer, code: 451, enhanced: 4.3.2}}
  - dns: {set: ["spare.isp.test. A 127.1.0.26"]}
  - send: 1
  - host: {name: smarthost.isp.test, behaviour: accept}
  - advance: 10m
`), 0,
			[]string{"  +0s       host smarthost.isp.test: defer 451 4.3.2 at data\n", "  +0s       dns set spare.isp.test. A 127.1.0.26\n",
				"    +0s       EDGE1    DEFER ", "  +0s       host smarthost.isp.test: accept at data\n", "    +10m0s    EDGE1    SEND ",
				"ndr path: HUB-LON -> EDGE1 -> smarthost.isp.test (To Internet)"}},
		{"timeline: the host still defers: the NDR is held", write("host-defers.yaml", string(noFiltering)+`timeline:
  - host: {name: smarthost.isp.test, behaviour: defer}
  - send: 1
  - advance: 10m
`), 0,
			[]string{"    +10m0s    EDGE1    DEFER ", "ndr path: not delivered yet (held in a queue)"}},
		{"size and attachments: under a site link's limit it crosses, over it an NDR 5.3.4", "../../scenarios/link-limit.yaml", 0,
			[]string{"path bob@contoso.test: EDGE1 -> HUB-LON -> HUB-BER -> MBX-BER:bob",
				"path bob@contoso.test: EDGE1 -> HUB-LON -> failed: 550 5.3.4 message of ", "exceeds the 4000-byte limit of a site link on london -> berlin"}},
		{"via a mailbox server", write("via-mbx.yaml", strings.Replace(string(fanout), "via: EDGE1", "via: MBX-BER", 1)), 2, nil},
		{"broken scenario", write("broken.yaml", "org:\n  sitez: []\n"), 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := capture(t, func() int { return runRepro([]string{tt.file}) })
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q\n%s", c, out)
				}
			}
		})
	}
}

func TestReproSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "paths.svg")
	if _, code := capture(t, func() int { return runRepro([]string{"../../scenarios/three-sites-hub.yaml", "--svg", svg}) }); code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", ">paris</text>", ">berlin</text>", "<polyline", "london -&gt; paris -&gt; berlin"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestReproSVGRoutingGroups: routing groups are squares, their connectors arrows with
// name and cost, and a message's path over them a line.
func TestReproSVGRoutingGroups(t *testing.T) {
	s, err := scenario.Load("../../scenarios/coexistence.yaml")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*reproMessage{{N: 1, Routes: []string{"HUB-HQ: mailbox on MBX-B in routing group rg-b: hq -(Interop HQ-A, 5)-> rg-a -(RGC A-B, 10)-> rg-b; cost 15, 2 hops; decided by least cost"}}}
	b, err := sitesSVG(s, msgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<rect x=", ">rg-a</text>", ">hq</text>", "Interop HQ-A (5)", "RGC A-B (10)", "marker-end=", "<polyline", "hq -&gt; rg-a -&gt; rg-b", "dashed arrows"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestReproShipped: every shipped scenario with messages holds under repro.
func TestReproShipped(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		s, err := scenario.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Messages) == 0 {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := clamdaemon.Find(); err != nil && s.AntivirusEnabled() {
				t.Skipf("the scenario scans with clamd: %v", err)
			}
			if _, err := spamdaemon.Find(); err != nil && s.NeedsWorldSpamd() {
				t.Skipf("the scenario scores with spamd: %v", err)
			}
			if out, code := capture(t, func() int { return runRepro([]string{f}) }); code != 0 {
				t.Errorf("exit %d, want 0\n%s", code, out)
			}
		})
	}
	if n < 6 {
		t.Errorf("only %d shipped scenarios have messages", n)
	}
}

var (
	// eventLineRE is one line of a message's trace: its times and order are the
	// run's own.
	eventLineRE = regexp.MustCompile(`(?m)^    \+\S+ +\S+ +[A-Z]+ .*\n`)
	queueID     = regexp.MustCompile(`<[0-9a-f]{28}(-c)?>`)
)

// TestReproGolden pins what repro prints, except the trace's lines and queue IDs,
// which differ from run to run.
func TestReproGolden(t *testing.T) {
	for _, name := range []string{"fanout", "no-filtering", "backoff", "routing-groups", "coexistence"} {
		t.Run(name, func(t *testing.T) {
			out, code := capture(t, func() int { return runRepro([]string{"../../scenarios/" + name + ".yaml"}) })
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			got := []byte(queueID.ReplaceAllString(eventLineRE.ReplaceAllString(out, ""), "<ID>"))
			golden := filepath.Join("testdata", "repro-"+name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -run TestReproGolden -update rewrites it)\n got:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestReproOutbox: a message placed in the sender's Outbox is shown from the Outbox
// through the Hubs to the recipient's store, filed in Sent Items, and heard at once by
// the recipient's mail client in IDLE (MBX-006, MBX-012).
func TestReproOutbox(t *testing.T) {
	out, code := capture(t, func() int { return runRepro([]string{"../../scenarios/outbox.yaml"}) })
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"APPEND Outbox at MBX-PAR",
		"path alice@contoso.test: MBX-PAR -> HUB-PAR -> HUB-LON -> MBX-LON:alice",
		"submitted from pierre@contoso.test's Outbox",
		"taken from the Outbox; filed in Sent Items",
		"MBX-LON  NOTIFY     alice@contoso.test   * 1 EXISTS",
		"idle alice@contoso.test at MBX-LON: * 1 EXISTS while in IDLE (INBOX was 0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("repro output lacks %q:\n%s", want, out)
		}
	}
}
