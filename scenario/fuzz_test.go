package scenario

import (
	"errors"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"
)

// addFiles seeds f with every file matching pattern; the shipped scenarios and the
// broken examples are read where they live, so the seeds follow them.
func addFiles(f *testing.F, patterns ...string) {
	f.Helper()
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil || len(paths) == 0 {
			f.Fatalf("no seed files match %s (%v)", pattern, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzParse checks the promises of Parse on any input: no panic; a refusal is a
// sorted list of positioned problems; a scenario that parses is complete (defaults
// applied, idempotently) and survives Marshal and Parse unchanged; and the same input
// always gives the same answer. Variants of the shipped files (truncated, wrong types,
// bad ports and CIDRs) are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	addFiles(f, "../scenarios/*.yaml", "testdata/*.yaml")
	f.Add([]byte("org:\n  servers: [{name: A, role: edge}, {name: a, role: hub}]\n"))
	f.Add([]byte("org: {servers: [&s {name: A, role: edge}, *s]}\n"))
	f.Add([]byte("org:\n  receive_connectors: [{server: A, bind: '[::1]:0', remote_ip_ranges: ['::/129']}]\n"))
	f.Add([]byte("org:\n  servers:\n    - {name: A, role: edge, agents: {connection_filter: {ip_block_list: ['127.0.0.0/33'], block_list_providers: [{zone: bl.test, bitmask_match: 127.0.0.4, ip_addresses_match: [127.0.0.2]}], bypassed_recipients: [postmaster], lookup_timeout: 1s}, sender_filter: {blocked_domains: ['*.x.test'], action: stamp, stamp_scl: 9}}}\n    - {name: H, role: hub, agents: {sender_filter: {}}}\n"))
	f.Add([]byte("org:\n  servers:\n    - {name: A, role: edge, agents: {transport_rules: [{name: r, priority: 1, when: {from: [a@b.test], header_contains: {name: X-A, words: [b]}, scl_at_least: 4}, then: {reject: {status: '554 5.7.950', text: no}}}]}}\n  transport_rules:\n    - {name: s, when: {attachment_name_matches: ['*.exe'], recipient_domain_is: [b.test]}, then: {prepend_subject: '[x] ', set_header: {name: X-B, value: c}, redirect_to: [c@d.test], blind_copy_to: [e@f.test]}}\n    - {name: t, then: {reject: {status: 5.7.2}, delete: true}}\n"))
	f.Add([]byte("org:\n  servers:\n    - {name: A, role: edge, agents: {address_rewriting: [{internal: '*@s.b.test', external: b.test, bidirectional: true}, {internal: '*.b.test', external: b.test}, {internal: a@b.test, external: c@b.test}]}}\n"))
	f.Add([]byte("org:\n  servers:\n    - {name: A, role: edge, agents: {attachment_filter: {blocked_names: ['*.exe', '[x'], blocked_types: [application/x-msdownload], action: strip, reject_response: no}}}\nmessages:\n  - {from: a@b.test, to: [c@d.test], via: A, attachments: [a.exe]}\n"))
	f.Add([]byte("org:\n  servers: [{name: A, role: edge}]\n  receive_connectors: [{server: A, permissions: [exchange_servers], externally_secured: true}]\nmessages: [{from: a@b.test, to: [c@d.test], via: A, client: '::1'}]\n"))
	// Routing groups: masters, bridgeheads and connectors right and wrong.
	f.Add([]byte("org:\n  routing: routing-groups\n  sites: [{name: s}]\n  routing_groups:\n    - {name: a, servers: [H1, M1, E1], master: H1}\n    - {name: b, servers: [H2, h1], master: M1}\n  routing_group_connectors:\n    - {name: c, from: a, to: B, cost: 0, local_bridgeheads: [H1, h1], remote_bridgeheads: [H2], address_space: '*', max_message_size: -1}\n    - {name: C, from: b, to: b}\n  servers: [{name: H1, role: hub}, {name: M1, role: mailbox}, {name: E1, role: edge}, {name: H2, role: hub, site: s, suppress_state_changes: true}]\n"))
	// Timelines and message content: every step, steps out of order, sizes at the bounds.
	for _, steps := range []string{
		"  - down: HUB1\n  - send: 2\n  - advance: 2h\n  - up: hub1\n  - dns: {set: [\"a.test. A 127.0.0.9\"], remove: [a.test., \"b.test. MX\"]}\n  - host: {name: mx1.fabrikam.test, behaviour: {action: stall, duration: 1m}}\n",
		"  - up: HUB1\n  - down: HUB1\n  - down: HUB1\n  - send: 0\n  - send: 1\n  - send: 1\n",
		"  - {down: HUB1, up: HUB1}\n  - {}\n  - advance: 0s\n  - dns: {}\n  - host: {name: ''}\n",
	} {
		f.Add([]byte(timelineBase + steps))
	}
	f.Add([]byte(timelineBase + "  - send: 1\nmessages:\n  - {from: a@b.test, to: [c@d.test], via: EDGE1, size: 67108864, attachments: [{name: x, size: 1}, {name: y, content: ''}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		s2, err2 := Parse("fuzz.yaml", data)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !reflect.DeepEqual(s, s2) {
			t.Fatalf("two parses of one input differ:\n%v\n%v", err, err2)
		}
		if err != nil {
			checkErrors(t, err, "fuzz.yaml")
			return
		}
		again, _ := s.Clone()
		if again != nil {
			again.ApplyDefaults()
		}
		if diff := cmp.Diff(s, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("ApplyDefaults is not idempotent, or Clone changed the scenario (-parsed +again):\n%s", diff)
		}
		b, err := Marshal(s)
		if err != nil {
			t.Fatalf("a parsed scenario does not marshal: %v", err)
		}
		back, err := Parse("fuzz.yaml", b)
		if err != nil {
			t.Fatalf("a parsed scenario, marshalled, does not parse: %v\n%s", err, b)
		}
		if diff := cmp.Diff(s, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Marshal and Parse changed the scenario (-parsed +back):\n%s", diff)
		}
	})
}

// checkErrors holds a refusal to Parse's contract: Errors, not empty, each naming its
// file, a position and a problem, sorted by position, and none of them the "decode"
// problem that means the walk missed a type mismatch.
func checkErrors(t *testing.T, err error, file string) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %T %q is not a non-empty Errors", err, err)
	}
	for i, e := range es {
		if e.File != file || e.Line < 1 || e.Col < 1 || strings.TrimSpace(e.Problem) == "" {
			t.Errorf("error %d does not name its file, position and problem: %#v", i, e)
		}
		if strings.HasPrefix(e.Problem, "decode: ") {
			t.Errorf("the walk let through what decoding refused: %v", e)
		}
		if i > 0 && (es[i-1].Line > e.Line || es[i-1].Line == e.Line && es[i-1].Col > e.Col) {
			t.Errorf("errors out of order: %v before %v", es[i-1], e)
		}
	}
}

// FuzzParseBehaviour checks that a behaviour text either fails with positioned
// problems or gives a behaviour the validator accepts, with its defaults filled in.
func FuzzParseBehaviour(f *testing.F) {
	for _, s := range []string{
		"accept", "defer", "reject", "drop", "stall", "",
		"{action: reject, stage: rcpt, code: 550, enhanced: 5.1.1}",
		"{action: defer, stage: greeting, code: 421}",
		"{action: stall, duration: 500ms}",
		"{action: drop, mid_data: true}",
		"{action: defer, code: 550}",
		"[accept]",
		"accept}, {name: other.test, behaviour: reject",
		"{action: accept}\nmessages: [{to: [a@b.test], via: X}]",
		"&a accept",
		"'reject'",
		"reject, tls: true",
		"{action: reject,\n code: 550}",
		"accept\n---\nreject",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		b, err := ParseBehaviour(text)
		if err != nil {
			checkErrors(t, err, "behaviour")
			return
		}
		v := &validator{s: &Scenario{}, file: "behaviour", nodes: map[string]nodeRef{}}
		v.behaviour("b", b)
		if len(v.errs) > 0 {
			t.Fatalf("ParseBehaviour(%q) = %+v, which the validator refuses: %v", text, b, v.errs)
		}
		if b.Action == "" || b.Stage == "" {
			t.Fatalf("ParseBehaviour(%q) = %+v: defaults not applied", text, b)
		}
		// The text is one behaviour: what it says on its own is what comes back, and
		// nothing of it may land elsewhere in the scenario it is read in.
		var own Behaviour
		if err := yaml.Unmarshal([]byte(text), &own); err != nil {
			t.Fatalf("ParseBehaviour(%q) = %+v, but the text is no YAML value: %v", text, b, err)
		}
		if own.Action == "" {
			own.Action = DefaultAction
		}
		if own.Action != b.Action || own.Stage != "" && own.Stage != b.Stage || own.Code != 0 && own.Code != b.Code ||
			own.Enhanced != "" && own.Enhanced != b.Enhanced || own.Text != b.Text || own.Duration != b.Duration || own.MidData != b.MidData {
			t.Fatalf("ParseBehaviour(%q) = %+v, but the text on its own says %+v", text, b, own)
		}
	})
}

// FuzzParseSmartHost checks that an accepted entry is a host the sender can dial: a
// domain or an IP address without brackets, a port in range, and NoMX for addresses
// and bracketed names.
func FuzzParseSmartHost(f *testing.F) {
	for _, s := range []string{
		"relay.contoso.test", "relay.contoso.test:587", "192.0.2.1", "192.0.2.1:25", "::1",
		"[::1]", "[::1]:2525", "[relay.contoso.test]", "[relay.contoso.test]:25",
		"relay.contoso.test:99999", "relay.contoso.test:+25", "relay.contoso.test:0", "[::1]:",
		"[", "]", "[]", ":25", "::1:25", "fe80::1%eth0", "[fe80::1%eth0]:25", "10.0.0.1", "a..b", "-a.test",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseSmartHost(s)
		if err != nil {
			if !strings.Contains(err.Error(), "is not a smart host") {
				t.Fatalf("ParseSmartHost(%q): error %q does not say what is wrong", s, err)
			}
			return
		}
		ip := isIP(h.Host)
		switch {
		case h.Host == "" || strings.ContainsAny(h.Host, "[]"):
			t.Fatalf("ParseSmartHost(%q) = %+v: no host, or brackets left", s, h)
		case !ip && !validDomain(h.Host):
			t.Fatalf("ParseSmartHost(%q) = %+v: host is neither an IP address nor a domain", s, h)
		case h.Port < 0 || h.Port > 65535:
			t.Fatalf("ParseSmartHost(%q) = %+v: port out of range", s, h)
		case ip && !h.NoMX:
			t.Fatalf("ParseSmartHost(%q) = %+v: an IP address must not be looked up as MX", s, h)
		case strings.HasPrefix(s, "[") != h.NoMX && !ip:
			t.Fatalf("ParseSmartHost(%q) = %+v: NoMX should follow the brackets", s, h)
		}
	})
}

// FuzzAddressProblem checks the scenario's address rule: what it accepts is a bare
// local@domain whose domain is a host name, exactly as net/mail reads it, since the
// validator takes the domain after the last "@" and suites send the text as written.
func FuzzAddressProblem(f *testing.F) {
	for _, s := range []string{
		"alice@contoso.test", "Alice@Contoso.Test.", `"j d"@contoso.test`, `"a@b"@contoso.test`,
		"Bob <bob@contoso.test>", "<bob@contoso.test>", "bob", "bob@", "@contoso.test",
		"bob@[192.0.2.1]", "bob@10.0.0.1", "(comment)bob@contoso.test", "bob@contoso.test (Bob)",
		"bob@contoso.test ", " bob@contoso.test", "bob@(c)contoso.test", "a@b@contoso.test",
		"bob@contoso.test, eve@contoso.test", "=?utf-8?q?B?= <b@c.test>", "b\u00e9@contoso.test",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if addressProblem(s) != "" {
			return
		}
		// String quotes the local part where it needs quotes, as s must.
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.String() != "<"+s+">" {
			t.Fatalf("%q accepted as a bare address, but net/mail reads it as %+v (%v)", s, a, err)
		}
		at := strings.LastIndex(s, "@")
		if at <= 0 || !validDomain(s[at+1:]) {
			t.Fatalf("%q accepted without a local part and a host-name domain", s)
		}
	})
}

// FuzzParseReplyCode: no panic; a code that parses prints as text that parses to the
// same code, and matches a reply made of its own parts.
func FuzzParseReplyCode(f *testing.F) {
	for _, s := range []string{"550", "5.1.1", "550 5.1.1", "450 4.2.0", "250", "2.0.0", "550 4.1.1", "5.1", "User unknown", " 550  5.7.1 ", "5.999.999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseReplyCode(s)
		if err != nil {
			return
		}
		again, err := ParseReplyCode(c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed as %+v, printed as %q, parsed again as %+v (%v)", s, c, c.String(), again, err)
		}
		code, enhanced := c.Basic, c.Enhanced
		if code == 0 {
			code = int(enhanced[0]-'0') * 100
		}
		if enhanced == "" {
			enhanced = string(rune('0'+code/100)) + ".0.0"
		}
		if !c.Matches(code, enhanced) {
			t.Fatalf("%+v does not match its own parts %d %s", c, code, enhanced)
		}
	})
}

// FuzzRemoveTarget: no panic; what a dns remove: entry names is a host name and a real
// record type, and the entry written back the way it was read names the same.
func FuzzRemoveTarget(f *testing.F) {
	for _, s := range []string{"fabrikam.test.", "fabrikam.test. MX", "x.test a", "x.test ANY", "x.test BOGUS", "", "a b c", "  x.test \t TXT ", "*.x.test", "x..test MX"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, qtype, ok := RemoveTarget(s)
		if !ok {
			return
		}
		if !validDomain(name) || qtype == dns.TypeNone || qtype == 0 {
			t.Fatalf("%q accepted as %q type %d", s, name, qtype)
		}
		text := name
		if qtype != dns.TypeANY {
			text += " " + dns.TypeToString[qtype]
		}
		if n2, q2, ok2 := RemoveTarget(text); !ok2 || n2 != name || q2 != qtype {
			t.Fatalf("%q read as %q %d, written %q, read again as %q %d %v", s, name, qtype, text, n2, q2, ok2)
		}
	})
}
