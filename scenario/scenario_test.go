package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// Every broken file and the one error it must produce, verbatim: the wording is part
// of the user interface.
var brokenFiles = map[string]string{
	"broken-unknown-key.yaml":             `testdata/broken-unknown-key.yaml:8:7: org.servers[1].rol: unknown key; did you mean "role"?`,
	"broken-design-smart-host.yaml":       `testdata/broken-design-smart-host.yaml:14:73: org.send_connectors[0].smart_host: unknown key; did you mean "smart_hosts"?`,
	"broken-duplicate-key.yaml":           `testdata/broken-duplicate-key.yaml:5:7: org.servers[0].name: duplicate key (first at line 3)`,
	"broken-wrong-type.yaml":              `testdata/broken-wrong-type.yaml:6:9: messages[0].to: expected a list, got "alice@contoso.test"`,
	"broken-yaml-syntax.yaml":             `testdata/broken-yaml-syntax.yaml:2:1: YAML syntax: did not find expected ',' or '}'`,
	"broken-bad-duration.yaml":            `testdata/broken-bad-duration.yaml:5:23: org.servers[0].retry_interval: invalid duration "10 minutes": want a duration such as 10m, 1h30m or 500ms`,
	"broken-dangling-site.yaml":           `testdata/broken-dangling-site.yaml:7:37: org.servers[1].site: unknown site "berlin" (known: london, paris)`,
	"broken-dangling-site-link.yaml":      `testdata/broken-dangling-site-link.yaml:6:24: org.site_links[0].sites[1]: unknown site "pariss" (known: london, paris)`,
	"broken-hub-without-site.yaml":        `testdata/broken-hub-without-site.yaml:6:7: org.servers[1].site: missing; a hub server needs a site when sites are declared`,
	"broken-duplicate-server.yaml":        `testdata/broken-duplicate-server.yaml:5:14: org.servers[2].name: duplicate server name "hub1" (first at line 3)`,
	"broken-dangling-receive-server.yaml": `testdata/broken-dangling-receive-server.yaml:6:16: org.receive_connectors[1].server: unknown server "EDGE2" (known: EDGE1)`,
	"broken-bad-bind.yaml":                `testdata/broken-bad-bind.yaml:5:29: org.receive_connectors[0].bind: "25" is not host:port or :port`,
	"broken-bad-permission.yaml":          `testdata/broken-bad-permission.yaml:5:48: org.receive_connectors[0].permissions[1]: unknown permission "everyone"; want one of anonymous, partners, exchange_users, exchange_servers`,
	"broken-bad-cidr.yaml":                `testdata/broken-bad-cidr.yaml:7:42: org.receive_connectors[0].remote_ip_ranges[1]: "10.0.0.0/33" is not a CIDR prefix or IP address`,
	"broken-dangling-source.yaml":         `testdata/broken-dangling-source.yaml:7:23: org.send_connectors[0].source[1]: unknown server "EGDE2" (known: EDGE1)`,
	"broken-bad-smart-host.yaml":          `testdata/broken-bad-smart-host.yaml:8:48: org.send_connectors[0].smart_hosts[1]: "relay.contoso.test:99999" is not a smart host (want an FQDN, host:port, an IP address, or [host] with an optional :port)`,
	"broken-two-defaults.yaml":            `testdata/broken-two-defaults.yaml:4:40: org.accepted_domains[1].default: more than one default domain (first at line 3)`,
	"broken-duplicate-address.yaml":       `testdata/broken-duplicate-address.yaml:7:33: org.recipients[1].proxies[1]: duplicate address "Alice@Contoso.test" (first at line 5)`,
	"broken-bad-address.yaml":             `testdata/broken-bad-address.yaml:6:14: org.recipients[1].mail: "Bob <bob@contoso.test>" is not a bare address (want local@domain, no display name or brackets)`,
	"broken-not-accepted.yaml":            `testdata/broken-not-accepted.yaml:5:14: org.recipients[0].mail: domain of "alice@fabrikam.test" is not an accepted domain, so mail to it could not arrive`,
	"broken-mailbox-role.yaml":            `testdata/broken-mailbox-role.yaml:8:43: org.recipients[0].mailbox: server "HUB1" has role hub, want mailbox`,
	"broken-unknown-member.yaml":          `testdata/broken-unknown-member.yaml:6:75: org.recipients[1].members[1]: unknown recipient "bob@contoso.test"`,
	"broken-contact-external.yaml":        `testdata/broken-contact-external.yaml:3:7: org.recipients[0].external: missing; a contact needs an external address`,
	"broken-bad-dns-record.yaml":          `testdata/broken-bad-dns-record.yaml:4:7: internet.dns[1]: bad record: dns: bad A A: "127.1.0" at line: 1:28`,
	"broken-dns-failure-mode.yaml":        `testdata/broken-dns-failure-mode.yaml:3:33: internet.dns_failures[0].mode: unknown mode "refused"; want one of servfail, nxdomain, timeout, truncate`,
	"broken-bad-action.yaml":              `testdata/broken-bad-action.yaml:4:18: internet.hosts[0].behaviour.action: unknown action "bounce"; want one of accept, defer, reject, drop, stall`,
	"broken-bad-enhanced.yaml":            `testdata/broken-bad-enhanced.yaml:4:56: internet.hosts[0].behaviour.enhanced: class 4 of "4.7.1" does not match reply code 550`,
	"broken-enhanced-syntax.yaml":         `testdata/broken-enhanced-syntax.yaml:5:54: internet.hosts[0].recipients[bob@fabrikam.test].enhanced: "4.7" is not an enhanced status code (want class.subject.detail with class 2, 4 or 5, e.g. 5.7.1)`,
	"broken-stall-duration.yaml":          `testdata/broken-stall-duration.yaml:4:18: internet.hosts[0].behaviour.duration: stall needs a duration > 0`,
	"broken-host-address.yaml":            `testdata/broken-host-address.yaml:3:42: internet.hosts[0].address: "10.1.0.10" is not an IP address in 127.0.0.0/8`,
	"broken-host-recipient-key.yaml":      `testdata/broken-host-recipient-key.yaml:5:9: internet.hosts[0].recipients[bob]: "bob" is not a valid address (want local@domain)`,
	"broken-via.yaml":                     `testdata/broken-via.yaml:5:47: messages[0].via: unknown server "EDGE9"; via names the server a client submits to: an Edge or a Hub (EDGE1)`,
	"broken-submit.yaml":                  `testdata/broken-submit.yaml:13:76: messages[0].submit: unknown "imap"; submit is left out (SMTP to via) or "outbox" (the sender's mail client places it in the Outbox at via)`,
	"broken-outbox-via.yaml":              `testdata/broken-outbox-via.yaml:13:61: messages[0].via: "MBX-D" is not alice@contoso.test's Mailbox server (MBX-C); with submit: outbox via is the sender's Mailbox server or a Client Access server (MBX-C, MBX-D)`,
	"broken-outbox-password.yaml":         `testdata/broken-outbox-password.yaml:13:12: messages[0].from: "bob@contoso.test" has no password in recipients:, so it cannot log in to place the message in its Outbox`,
	"broken-idle.yaml":                    `testdata/broken-idle.yaml:13:91: messages[0].idle[0]: "bob@contoso.test" has no password in recipients:, so no mail client of theirs can log in`,
	"broken-via-mailbox.yaml":             `testdata/broken-via-mailbox.yaml:11:47: messages[0].via: "MBX-C" is a mailbox server, which takes mail only from the Hubs; via names the server a client submits to by SMTP: an Edge or a Hub (EDGE1, HUB1) (or give submit: outbox to place the message in the sender's Outbox)`,
	"broken-expect-rejected.yaml":         `testdata/broken-expect-rejected.yaml:13:24: messages[0].expect.rejected: "User unknown" is not a reply code: want a basic code (550), an enhanced code (5.1.1) or both ("550 5.1.1")`,
	"broken-expect-rejected-class.yaml":   `testdata/broken-expect-rejected-class.yaml:13:24: messages[0].expect.rejected: "550 4.1.1": class 4 of 4.1.1 does not match reply code 550`,
	"broken-expect-delivered.yaml":        `testdata/broken-expect-delivered.yaml:13:26: messages[0].expect.delivered[0]: "HUB1" is a hub server, which stores no mail; SERVER is a mailbox server (MBX-C)`,
	"broken-expect-delivered-form.yaml":   `testdata/broken-expect-delivered-form.yaml:13:26: messages[0].expect.delivered[0]: "alice@contoso.test" is not SERVER/local-part: want the mailbox server and the recipient's local part, e.g. MBX-BER/bob; SERVER is a mailbox server (MBX-C)`,
	"broken-expect-path.yaml":             `testdata/broken-expect-path.yaml:13:20: messages[0].expect.path[0]: "EDGE1 -> HUB2 -> MBX-C:alice": "HUB2" is not an Edge or a Hub; a hop before the end is a transport server (EDGE1, HUB1)`,
	"broken-expect-path-start.yaml":       `testdata/broken-expect-path-start.yaml:16:11: messages[0].expect.path[1]: "HUB1 -> MBX-C:bob" starts at "HUB1", not at the via server EDGE1: a path is "SERVER -> SERVER -> ... -> END" from the via server, END being MAILBOX-SERVER:local-part, HOST (SEND CONNECTOR) or failed: REPLY`,
	"broken-expect-path-end.yaml":         `testdata/broken-expect-path-end.yaml:13:20: messages[0].expect.path[0]: "EDGE1 -> HUB1 -> alice" ends at "alice": a path is "SERVER -> SERVER -> ... -> END" from the via server, END being MAILBOX-SERVER:local-part, HOST (SEND CONNECTOR) or failed: REPLY`,
	"broken-group-password.yaml":          `testdata/broken-group-password.yaml:5:55: org.recipients[0].password: only mailbox recipients sign in`,
	"broken-group-quota.yaml":             `testdata/broken-group-quota.yaml:5:52: org.recipients[0].quota: only mailboxes have a quota`,
	"broken-negative-quota.yaml":          `testdata/broken-negative-quota.yaml:8:56: org.recipients[0].quota: negative; a quota is a size in bytes, 0 for none`,
	"broken-password-control.yaml":        `testdata/broken-password-control.yaml:5:44: org.recipients[0].password: has a control character`,
	"broken-rg-without-mode.yaml":         `testdata/broken-rg-without-mode.yaml:2:3: org.routing_groups: routing groups need org.routing: routing-groups`,
	"broken-rg-unknown-mode.yaml":         `testdata/broken-rg-unknown-mode.yaml:2:12: org.routing: unknown routing "groups"; want one of sites, routing-groups`,
	"broken-rg-two-groups.yaml":           `testdata/broken-rg-two-groups.yaml:5:37: org.routing_groups[1].servers[1]: server "HUB-A" is already in a routing group (line 4); a server is in one group`,
	"broken-rg-master.yaml":               `testdata/broken-rg-master.yaml:4:53: org.routing_groups[0].master: "MBX-A" is a mailbox server; the routing group master is a hub`,
	"broken-rg-no-group.yaml":             `testdata/broken-rg-no-group.yaml:12:14: org.servers[3].name: mailbox server "MBX-B" is in no routing group (and no site)`,
	"broken-rgc-group.yaml":               `testdata/broken-rgc-group.yaml:7:35: org.routing_group_connectors[0].to: unknown routing group "rg-c" (known: rg-a, rg-b)`,
	"broken-rgc-bridgehead.yaml":          `testdata/broken-rgc-bridgehead.yaml:7:71: org.routing_group_connectors[0].remote_bridgeheads[0]: "HUB-A" is not a server of routing group "rg-b"`,
	"broken-rgc-address-space.yaml":       `testdata/broken-rgc-address-space.yaml:7:94: org.routing_group_connectors[0].address_space: "contoso.test": a routing group connector carries the whole organisation, "*"; an address space of its own is an SMTP connector's (send_connectors)`,
	"broken-rgc-two-sites.yaml":           `testdata/broken-rgc-two-sites.yaml:7:31: org.routing_group_connectors[0].to: joins two sites (hq, branch); sites are joined by site_links, a routing group connector has a routing group at one end at least`,
	"broken-rgc-cost.yaml":                `testdata/broken-rgc-cost.yaml:7:47: org.routing_group_connectors[0].cost: must be 1 to 100 (0 for the default, 1), got 101`,
}

func TestBrokenFiles(t *testing.T) {
	for name, want := range brokenFiles {
		t.Run(name, func(t *testing.T) {
			s, err := Load(filepath.Join("testdata", name))
			if err == nil {
				t.Fatalf("Load succeeded, want %s", want)
			}
			if s != nil {
				t.Errorf("Load returned a scenario with an error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			// One problem per file keeps each file about one rule.
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(es), err)
			}
			if got := err.Error(); got != want {
				t.Errorf("error\n got: %s\nwant: %s", got, want)
			}
			var e *Error
			if !errors.As(err, &e) || e != es.First() {
				t.Errorf("errors.As(*Error) does not find the first error")
			}
		})
	}
}

// TestEveryBrokenFileIsListed keeps the table and testdata/ in step.
func TestEveryBrokenFileIsListed(t *testing.T) {
	files, err := filepath.Glob("testdata/broken-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 14 {
		t.Errorf("only %d broken files", len(files))
	}
	for _, f := range files {
		if _, ok := brokenFiles[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in brokenFiles", f)
		}
	}
	if len(files) != len(brokenFiles) {
		t.Errorf("%d broken files, %d table entries", len(files), len(brokenFiles))
	}
}

func TestValidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if s.File != f {
				t.Errorf("File = %q, want %q", s.File, f)
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *Scenario {
	t.Helper()
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return s
}

func TestDesignExample(t *testing.T) {
	s := mustLoad(t, "testdata/valid-design.yaml")
	if got := len(s.Org.Servers); got != 3 {
		t.Fatalf("servers = %d, want 3", got)
	}
	edge, ok := s.Server("edge1")
	if !ok || edge.Role != RoleEdge || edge.FQDN != "edge1.contoso.test" || !*edge.RecipientFiltering {
		t.Errorf("EDGE1 = %+v", edge)
	}
	rcs := s.ReceiveConnectorsOf("EDGE1")
	if len(rcs) != 1 || rcs[0].Name != `EDGE1\Default0` || rcs[0].Permissions[0] != PermAnonymous {
		t.Errorf("EDGE1 receive connectors = %+v", rcs)
	}
	h, ok := s.Host("MX1.fabrikam.test.")
	if !ok || h.Behaviour.Action != "accept" || h.Behaviour.Stage != "data" {
		t.Errorf("host = %+v", h)
	}
	if m := s.Messages[0]; m.Via != "EDGE1" || m.Expect.Delivered[0] != "MBX-LON/alice" {
		t.Errorf("message = %+v", m)
	}
	if len(s.Internet.DNS) != 2 || s.Internet.DNSBL[0].Listed[0] != "127.9.9.9" {
		t.Errorf("internet = %+v", s.Internet)
	}
}

// TestFullFileUsesEveryField fails when a field is added to types.go without being
// exercised by valid-full.yaml.
func TestFullFileUsesEveryField(t *testing.T) {
	s := mustLoad(t, "testdata/valid-full.yaml")
	set := map[string]bool{}
	markSet(reflect.ValueOf(*s), set)
	for _, f := range allFields(reflect.TypeOf(Scenario{}), map[reflect.Type]bool{}) {
		if !set[f] {
			t.Errorf("valid-full.yaml never sets %s", f)
		}
	}
	if !reflect.DeepEqual(s.Org.SendConnectors[1].SmartHosts[0], "[relay.partner.test]:587") {
		t.Errorf("smart hosts = %v", s.Org.SendConnectors[1].SmartHosts)
	}
	if got := s.Org.Servers[0].RetryInterval.D(); got != 90*time.Minute {
		t.Errorf("retry_interval = %v, want 1h30m", got)
	}
	if got := s.Internet.Hosts[1].Behaviour.Duration.D(); got != 5*time.Minute {
		t.Errorf("stall duration = %v, want 5m", got)
	}
	if b := s.Internet.Hosts[0].Recipients["nobody@fabrikam.test"]; b.Code != 550 || b.Enhanced != "5.1.1" || b.Text != "No such user" || b.Stage != "rcpt" {
		t.Errorf("per-recipient behaviour = %+v", b)
	}
	if *s.Org.SendConnectors[1].Enabled {
		t.Errorf("enabled: false was overwritten by the default")
	}
}

func markSet(v reflect.Value, set map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			markSet(v.Elem(), set)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			markSet(v.Index(i), set)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			markSet(v.MapIndex(k), set)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Field(i).IsZero() {
				set[v.Type().Name()+"."+v.Type().Field(i).Name] = true
			}
			markSet(v.Field(i), set)
		}
	}
}

func allFields(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("yaml") == "-" {
			continue
		}
		out = append(out, t.Name()+"."+f.Name)
		out = append(out, allFields(f.Type, seen)...)
	}
	return out
}

func TestApplyDefaults(t *testing.T) {
	s := mustLoad(t, "testdata/valid-defaults.yaml")
	tests := []struct {
		what      string
		got, want any
	}{
		{"domain type", s.Org.AcceptedDomains[0].Type, Authoritative},
		{"explicit domain type", s.Org.AcceptedDomains[1].Type, ExternalRelay},
		{"edge fqdn", s.Org.Servers[0].FQDN, "edge1.contoso.test"},
		{"hub fqdn", s.Org.Servers[1].FQDN, "hub1.contoso.test"},
		{"edge filtering", *s.Org.Servers[0].RecipientFiltering, true},
		{"hub filtering", *s.Org.Servers[1].RecipientFiltering, false},
		{"hop count", s.Org.Servers[2].MaxHopCount, 60},
		{"retry", s.Org.Servers[2].RetryInterval.D(), 10 * time.Minute},
		{"site spelling", s.Org.Servers[2].Site, "London"},
		{"rc 0 name", s.Org.ReceiveConnectors[0].Name, `Edge1\Default0`},
		{"rc 0 server spelling", s.Org.ReceiveConnectors[0].Server, "Edge1"},
		{"rc 0 bind", s.Org.ReceiveConnectors[0].Bind, ":25"},
		{"rc 1 name", s.Org.ReceiveConnectors[1].Name, `HUB1\Default0`},
		{"rc 2 explicit name", s.Org.ReceiveConnectors[2].Name, "Internal"},
		{"rc 3 name", s.Org.ReceiveConnectors[3].Name, `Edge1\Default2`},
		{"rc 3 bind", s.Org.ReceiveConnectors[3].Bind, "127.0.0.1:587"},
		{"send enabled", *s.Org.SendConnectors[0].Enabled, true},
		{"send source spelling", s.Org.SendConnectors[0].Source[0], "Edge1"},
		{"recipient type", s.Org.Recipients[0].Type, RecipientMailbox},
		{"mailbox spelling", s.Org.Recipients[1].Mailbox, "Mbx1"},
		{"host action", s.Internet.Hosts[0].Behaviour.Action, "accept"},
		{"host stage", s.Internet.Hosts[0].Behaviour.Stage, "data"},
		{"host accept code", s.Internet.Hosts[0].Behaviour.Code, 0},
		{"defer code", s.Internet.Hosts[1].Behaviour.Code, 451},
		{"defer enhanced", s.Internet.Hosts[1].Behaviour.Enhanced, "4.0.0"},
		{"rcpt reject", s.Internet.Hosts[1].Recipients["a@fabrikam.test"], Behaviour{Action: "reject", Stage: "rcpt", Code: 550, Enhanced: "5.0.0"}},
		{"greeting defer", s.Internet.Hosts[1].Recipients["b@fabrikam.test"], Behaviour{Action: "defer", Stage: "greeting", Code: 421}},
		{"stall", s.Internet.Hosts[1].Recipients["c@fabrikam.test"], Behaviour{Action: "stall", Stage: "rcpt", Duration: Duration(time.Second)}},
		{"via spelling", s.Messages[0].Via, "Edge1"},
		{"from stays null", s.Messages[0].From, ""},
		{"default domain", s.DefaultDomain(), "contoso.test"},
		{"rcs of edge", len(s.ReceiveConnectorsOf("EDGE1")), 3},
		{"hubs", len(s.ServersByRole(RoleHub)), 1},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.what, tt.got, tt.want)
		}
	}

	before, _ := yaml.Marshal(s)
	s.ApplyDefaults()
	after, _ := yaml.Marshal(s)
	if string(before) != string(after) {
		t.Errorf("ApplyDefaults is not idempotent:\n%s\n---\n%s", before, after)
	}
}

func TestFQDNFallbackDomain(t *testing.T) {
	s, err := Parse("x.yaml", []byte("org:\n  servers:\n    - {name: EDGE1, role: edge}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Org.Servers[0].FQDN; got != "edge1.mailflow.test" {
		t.Errorf("FQDN = %q", got)
	}
	if got := s.DefaultDomain(); got != "mailflow.test" {
		t.Errorf("DefaultDomain = %q", got)
	}
}

func TestAcceptedDomain(t *testing.T) {
	s := mustLoad(t, "testdata/valid-defaults.yaml")
	tests := []struct {
		domain string
		want   string // the matching entry's Domain; "" for none
	}{
		{"contoso.test", "*.Contoso.Test"},
		{"CONTOSO.TEST.", "*.Contoso.Test"},
		{"x.contoso.test", "*.Contoso.Test"},
		{"a.contoso.test", "a.contoso.test"},          // exact beats wildcard
		{"x.a.contoso.test", "*.Contoso.Test"},        // a.contoso.test is no wildcard
		{"b.contoso.test", "*.b.contoso.test"},        // longest wildcard, parent itself
		{"deep.x.b.contoso.test", "*.b.contoso.test"}, // longest wildcard
		{"fabrikam.test", "fabrikam.test."},
		{"Fabrikam.Test.", "fabrikam.test."},
		{"x.fabrikam.test", ""},
		{"notcontoso.test", ""},
		{"test", ""},
		{"", ""},
	}
	for _, tt := range tests {
		ad, ok := s.AcceptedDomain(tt.domain)
		got := ""
		if ok {
			got = ad.Domain
		}
		if got != tt.want {
			t.Errorf("AcceptedDomain(%q) = %q, want %q", tt.domain, got, tt.want)
		}
	}
}

func TestQueries(t *testing.T) {
	s := mustLoad(t, "testdata/valid-full.yaml")
	if _, ok := s.Server("nope"); ok {
		t.Error("Server(nope) found")
	}
	if sv, ok := s.Server("mbx-lon"); !ok || sv.Name != "MBX-LON" {
		t.Errorf("Server(mbx-lon) = %v, %v", sv, ok)
	}
	if got := len(s.ServersByRole(RoleMailbox)); got != 3 {
		t.Errorf("mailbox servers = %d", got)
	}
	if r, ok := s.Recipient("A.Smith@contoso.test"); !ok || r.Mail != "alice@contoso.test" {
		t.Errorf("Recipient(proxy) = %v, %v", r, ok)
	}
	if _, ok := s.Host("mx9.fabrikam.test"); ok {
		t.Error("Host(mx9) found")
	}
	if got := s.DefaultDomain(); got != "contoso.test" {
		t.Errorf("DefaultDomain = %q", got)
	}
	if rcs := s.ReceiveConnectorsOf("edge1"); len(rcs) != 2 || rcs[1].Name != `EDGE1\Relay` {
		t.Errorf("ReceiveConnectorsOf(edge1) = %v", rcs)
	}
	for _, c := range []struct{ server, want string }{{"mbx-osl", "rg-oslo"}, {"HUB-LON", "london"}, {"EDGE1", ""}, {"nope", ""}} {
		if got := s.Location(c.server); got != c.want {
			t.Errorf("Location(%s) = %q, want %q", c.server, got, c.want)
		}
	}
}

// TestNeedsWorldSpamd: a content filter enabled with no spamd named is valid and asks
// the world's; one that names its own, or is off, does not.
func TestNeedsWorldSpamd(t *testing.T) {
	for _, c := range []struct {
		agents string
		want   bool
	}{
		{"{content_filter: {enabled: true}}", true},
		{"{content_filter: {enabled: true, spamd: '127.0.0.1:783'}}", false},
		{"{content_filter: {spamd: '127.0.0.1:783'}}", false},
		{"{}", false},
	} {
		s, err := Parse("e.yaml", []byte("org:\n  servers:\n    - {name: A, role: edge, agents: "+c.agents+"}\n"))
		if err != nil {
			t.Fatalf("%s: %v", c.agents, err)
		}
		if got := s.NeedsWorldSpamd(); got != c.want {
			t.Errorf("%s: NeedsWorldSpamd() = %v, want %v", c.agents, got, c.want)
		}
	}
}

func TestRoutingGroupDefaults(t *testing.T) {
	s, err := Parse("rg.yaml", []byte(`org:
  routing: routing-groups
  routing_groups:
    - {name: RG-A, servers: [mbx-a, hub-a2, hub-a1]}
    - {name: RG-B, servers: [HUB-B]}
  routing_group_connectors:
    - {name: a-b, from: rg-a, to: rg-b, remote_bridgeheads: [hub-b]}
  servers:
    - {name: HUB-A1, role: hub}
    - {name: HUB-A2, role: hub}
    - {name: MBX-A, role: mailbox}
    - {name: HUB-B, role: hub}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := s.Org.RoutingGroups[0]
	if g.Master != "HUB-A2" || g.Servers[0] != "MBX-A" {
		t.Errorf("group = %+v, want master HUB-A2 (the first hub listed) and names as declared", g)
	}
	c := s.Org.RoutingGroupConnectors[0]
	want := RoutingGroupConnector{Name: "a-b", From: "RG-A", To: "RG-B", Cost: 1,
		LocalBridgeheads: []string{"HUB-A2", "HUB-A1"}, RemoteBridgeheads: []string{"HUB-B"}, AddressSpace: "*"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("connector defaults (-want +got):\n%s", diff)
	}
	if s.Org.Routing != RoutingGroups {
		t.Errorf("routing = %q", s.Org.Routing)
	}
}

func TestParseSmartHost(t *testing.T) {
	tests := []struct {
		in   string
		want SmartHost
		err  bool
	}{
		{in: "smart.contoso.test", want: SmartHost{Host: "smart.contoso.test"}},
		{in: "smart.contoso.test:587", want: SmartHost{Host: "smart.contoso.test", Port: 587}},
		{in: "127.1.0.20", want: SmartHost{Host: "127.1.0.20", NoMX: true}},
		{in: "127.1.0.20:2525", want: SmartHost{Host: "127.1.0.20", Port: 2525, NoMX: true}},
		{in: "::1", want: SmartHost{Host: "::1", NoMX: true}},
		{in: "[::1]:25", want: SmartHost{Host: "::1", Port: 25, NoMX: true}},
		{in: "[relay.test]", want: SmartHost{Host: "relay.test", NoMX: true}},
		{in: "[relay.test]:26", want: SmartHost{Host: "relay.test", Port: 26, NoMX: true}},
		{in: "", err: true},
		{in: "relay.test:0", err: true},
		{in: "relay.test:x", err: true},
		{in: "[relay.test", err: true},
		{in: "[relay.test]25", err: true},
		{in: "[]", err: true},
		{in: "relay test", err: true},
		{in: "-relay.test", err: true},
		{in: "::1:25x", err: true},
		{in: "fe80::1%eth0", err: true},
		{in: "[::%]0]:25", err: true},
		{in: "::%]0", err: true},
	}
	for _, tt := range tests {
		got, err := ParseSmartHost(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSmartHost(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMultipleErrorsSorted(t *testing.T) {
	src := `org:
  servers:
    - {name: A, role: boss}
    - {name: B, role: hub, colour: red}
internet:
  hosts:
    - name: h.test
      recipients:
        x@h.test: {action: reject, stgae: rcpt}
`
	_, err := Parse("m.yaml", []byte(src))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	// Structure problems are reported together; value checks wait until the
	// structure is right, so "boss" is not reported yet.
	want := []string{
		`m.yaml:4:28: org.servers[1].colour: unknown key`,
		`m.yaml:9:36: internet.hosts[0].recipients[x@h.test].stgae: unknown key; did you mean "stage"?`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if es.First().Line != 4 {
		t.Errorf("First = %v", es.First())
	}

	src = `org:
  servers:
    - {name: B, role: hub}
    - {name: A, role: boss}
messages:
  - {from: x, to: [], via: Z}
`
	_, err = Parse("m.yaml", []byte(src))
	want = []string{
		`m.yaml:4:23: org.servers[1].role: unknown role "boss"; want one of edge, hub, mailbox, client_access`,
		`m.yaml:6:12: messages[0].from: "x" is not a valid address (want local@domain)`,
		`m.yaml:6:19: messages[0].to: missing; a message needs at least one recipient`,
		`m.yaml:6:28: messages[0].via: unknown server "Z"; via names the server a client submits to: an Edge or a Hub (B)`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseEdgeCases(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "e.yaml:1:1: empty scenario file"},
		{"comment only", "# nothing\n", "e.yaml:1:1: empty scenario file"},
		{"top-level list", "- a\n", `e.yaml:1:1: expected a mapping, got a list`},
		{"wrong scalar", "org:\n  servers:\n    - {name: A, role: edge, max_hop_count: many}\n", `e.yaml:3:44: org.servers[0].max_hop_count: expected an integer, got "many"`},
		{"wrong bool", "org:\n  sites:\n    - {name: s, hub: maybe}\n", `e.yaml:3:22: org.sites[0].hub: expected true or false, got "maybe"`},
		{"list for string", "org:\n  servers:\n    - {name: [A], role: edge}\n", `e.yaml:3:14: org.servers[0].name: expected a string, got a list`},
		{"duration mapping", "org:\n  servers:\n    - {name: A, role: edge, retry_interval: {m: 1}}\n", `e.yaml:3:45: org.servers[0].retry_interval: expected a duration such as 10m, 1h30m or 500ms, got a mapping`},
		{"bare number duration", "org:\n  servers:\n    - {name: A, role: edge, retry_interval: 600}\n", `e.yaml:3:45: org.servers[0].retry_interval: invalid duration "600": want a duration such as 10m, 1h30m or 500ms`},
		{"invalid with its attribute", "org:\n  accepted_domains: [{domain: b.test, type: authoritative}]\n  servers:\n    - {name: M, role: mailbox}\n  recipients:\n    - {mail: a@b.test, mailbox: M, invalid: true}\n", `e.yaml:6:45: org.recipients[0].invalid: an invalid object lacks what delivery needs: drop its mailbox and external`},
		{"forward to nobody", "org:\n  accepted_domains: [{domain: b.test, type: authoritative}]\n  servers:\n    - {name: M, role: mailbox}\n  recipients:\n    - {mail: a@b.test, mailbox: M, forward_to: c@b.test}\n", `e.yaml:6:48: org.recipients[0].forward_to: unknown recipient "c@b.test"`},
		{"group forwards", "org:\n  accepted_domains: [{domain: b.test, type: authoritative}]\n  recipients:\n    - {mail: a@b.test, type: group, forward_to: a@b.test}\n", `e.yaml:4:49: org.recipients[0].forward_to: only mailboxes forward`},
		{"behaviour list", "internet:\n  hosts:\n    - {name: h.test, behaviour: [accept]}\n", `e.yaml:3:33: internet.hosts[0].behaviour: expected a mapping, got a list`},
		{"code without action", "internet:\n  hosts:\n    - {name: h.test, behaviour: {code: 550}}\n", `e.yaml:3:33: internet.hosts[0].behaviour.action: missing; want one of accept, defer, reject, drop, stall`},
		{"defer 5xx", "internet:\n  hosts:\n    - {name: h.test, behaviour: {action: defer, code: 550}}\n", `e.yaml:3:55: internet.hosts[0].behaviour.code: defer needs a 4xx code, got 550`},
		{"enhanced vs action", "internet:\n  hosts:\n    - {name: h.test, behaviour: {action: defer, enhanced: 5.1.1}}\n", `e.yaml:3:59: internet.hosts[0].behaviour.enhanced: class 5 of "5.1.1" does not match action defer`},
		{"unknown extension", "internet:\n  hosts:\n    - {name: h.test, extensions: [dsn, XFOO]}\n", `e.yaml:3:40: internet.hosts[0].extensions[1]: "XFOO" is not an extension a fake host can offer (one of DSN, SMTPUTF8, BINARYMIME, REQUIRETLS, RRVS, DELIVERBY, MT-PRIORITY)`},
		{"auth without password", "org:\n  send_connectors:\n    - {name: s, address_spaces: ['*'], smart_hosts: [r.test], auth: {username: u}}\n", `e.yaml:3:69: org.send_connectors[0].auth.password: missing; auth needs a username and a password`},
		{"no permissions", "org:\n  servers: [{name: A, role: edge}]\n  receive_connectors: [{server: A}]\n", `e.yaml:3:24: org.receive_connectors[0].permissions: missing; want at least one of anonymous, partners, exchange_users, exchange_servers`},
		{"duplicate default connector name", "org:\n  servers: [{name: A, role: edge}]\n  receive_connectors:\n    - {server: A, permissions: [anonymous]}\n    - {server: a, name: 'A\\Default0', permissions: [anonymous]}\n", `e.yaml:5:25: org.receive_connectors[1].name: duplicate receive connector name "A\Default0" on server A (first at line 4)`},
		{"bad wildcard", "org:\n  accepted_domains: [{domain: 'contoso.*'}]\n", `e.yaml:2:31: org.accepted_domains[0].domain: "contoso.*" is not a domain name or *.domain`},
		{"link three sites", "org:\n  sites: [{name: a}, {name: b}, {name: c}]\n  site_links: [{sites: [a, b, c], cost: -1}]\n", "e.yaml:3:24: org.site_links[0].sites: want exactly 2 sites, got 3\ne.yaml:3:41: org.site_links[0].cost: must not be negative, got -1"},
		{"white space around an address", "org:\n  accepted_domains: [{domain: b.test}]\n  recipients:\n    - {mail: ' a@b.test', type: contact, external: 'x@y.test '}\n", "e.yaml:4:14: org.recipients[0].mail: \" a@b.test\" is not a bare address (want local@domain with nothing around it)\ne.yaml:4:52: org.recipients[0].external: \"x@y.test \" is not a bare address (want local@domain with nothing around it)"},
		{"externally secured for anyone", "org:\n  servers: [{name: A, role: edge}]\n  receive_connectors:\n    - {server: A, permissions: [exchange_servers], externally_secured: true}\n    - {server: A, permissions: [anonymous], externally_secured: true, remote_ip_ranges: [127.1.0.0/16]}\n",
			"e.yaml:4:72: org.receive_connectors[0].externally_secured: needs remote_ip_ranges: only the organisation's own servers may be trusted so\n" +
				"e.yaml:5:65: org.receive_connectors[1].externally_secured: needs the exchange_servers permission"},
		{"client not loopback", "org:\n  servers: [{name: A, role: edge}]\nmessages:\n  - {from: a@b.test, to: [c@d.test], via: A, client: 10.0.0.1}\n", `e.yaml:4:54: messages[0].client: "10.0.0.1" is not a loopback address (127.0.0.0/8 or ::1)`},
		{"agents on a hub", "org:\n  servers:\n    - {name: H, role: hub, agents: {sender_filter: {action: reject}}}\n", `e.yaml:3:36: org.servers[0].agents: agents run on edge servers only, not on a hub server`},
		{"unknown agent key", "org:\n  servers:\n    - {name: A, role: edge, agents: {connection_filter: {providers: []}}}\n", `e.yaml:3:58: org.servers[0].agents.connection_filter.providers: unknown key`},
		{"agent values", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        connection_filter:\n          ip_block_list: [127.0.0.300]\n          block_list_providers: [{zone: bl.test, bitmask_match: 10.0.0.4}, {zone: BL.test., ip_addresses_match: [127.0.0.2], bitmask_match: 127.0.0.4}]\n          bypassed_recipients: ['post master']\n        sender_filter: {blocked_senders: [nobody], blocked_domains: ['*.'], action: drop, stamp_scl: 10}\n",
			"e.yaml:7:27: org.servers[0].agents.connection_filter.ip_block_list[0]: \"127.0.0.300\" is not a CIDR prefix or IP address\n" +
				"e.yaml:8:65: org.servers[0].agents.connection_filter.block_list_providers[0].bitmask_match: \"10.0.0.4\" is not a return code (an IPv4 address in 127.0.0.0/8)\n" +
				"e.yaml:8:83: org.servers[0].agents.connection_filter.block_list_providers[1].zone: duplicate zone \"BL.test.\" (first at line 8)\n" +
				"e.yaml:8:141: org.servers[0].agents.connection_filter.block_list_providers[1].bitmask_match: set with ip_addresses_match; a provider matches one way (Exchange's BitmaskMatch or IPAddressesMatch)\n" +
				"e.yaml:9:33: org.servers[0].agents.connection_filter.bypassed_recipients[0]: \"post master\" is neither an address nor a local part\n" +
				"e.yaml:10:43: org.servers[0].agents.sender_filter.blocked_senders[0]: \"nobody\" is not a valid address (want local@domain)\n" +
				"e.yaml:10:70: org.servers[0].agents.sender_filter.blocked_domains[0]: \"*.\" is not a domain name or *.domain\n" +
				"e.yaml:10:85: org.servers[0].agents.sender_filter.action: unknown action \"drop\"; want one of reject, stamp\n" +
				"e.yaml:10:102: org.servers[0].agents.sender_filter.stamp_scl: an SCL is 0-9, got 10"},
		{"content filter values", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        content_filter: {enabled: true, spamd: localhost, scl_reject_threshold: 10, scl_quarantine_threshold: 6}\n",
			"e.yaml:6:25: org.servers[0].agents.content_filter.quarantine_mailbox: \"\" is not a valid address (want local@domain) (the quarantine threshold needs a mailbox)\n" +
				"e.yaml:6:48: org.servers[0].agents.content_filter.spamd: \"localhost\" is not host:port (the spamd the filter asks)\n" +
				"e.yaml:6:81: org.servers[0].agents.content_filter.scl_reject_threshold: an SCL is 0-9, got 10"},
		{"attachment filter values", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        attachment_filter: {blocked_names: ['[x', 'a/b.exe'], blocked_types: [exe, 'text/plain; charset=x'], action: quarantine}\n",
			"e.yaml:6:45: org.servers[0].agents.attachment_filter.blocked_names[0]: \"[x\" is not a file name pattern (\"*.exe\")\n" +
				"e.yaml:6:51: org.servers[0].agents.attachment_filter.blocked_names[1]: \"a/b.exe\" is not a file name pattern (\"*.exe\")\n" +
				"e.yaml:6:79: org.servers[0].agents.attachment_filter.blocked_types[0]: \"exe\" is not a media type (type/subtype)\n" +
				"e.yaml:6:84: org.servers[0].agents.attachment_filter.blocked_types[1]: \"text/plain; charset=x\" is not a media type (type/subtype)\n" +
				"e.yaml:6:118: org.servers[0].agents.attachment_filter.action: unknown action \"quarantine\"; want one of reject, strip, silent_delete"},
		{"antivirus values", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        antivirus: {enabled: true, action: quarantine, reject_response: \"a\\nb\"}\n",
			"e.yaml:6:44: org.servers[0].agents.antivirus.action: unknown action \"quarantine\"; want one of delete, reject, strip\n" +
				"e.yaml:6:73: org.servers[0].agents.antivirus.reject_response: must be one line"},
		{"transport rules", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        transport_rules:\n          - {name: x, then: {reject: {status: '250'}}}\n          - {name: X, priority: 1, when: {from: [nobody], header_contains: {name: 'a b'}, scl_at_least: 10}, then: {}}\n  transport_rules:\n    - {name: r, then: {reject: {status: '550 5.7.3'}, delete: true}}\n    - {name: s, priority: 0, when: {recipient_domain_is: ['-x-'], attachment_name_matches: ['[']}, then: {set_header: {name: 'X:Y', value: v}, redirect_to: [z]}}\n",
			"e.yaml:7:47: org.servers[0].agents.transport_rules[0].then.reject.status: \"250\" is not a refusal's reply code (4yz or 5yz): want a basic code (550), an enhanced code (5.1.1) or both (\"550 5.1.1\")\n" +
				"e.yaml:8:20: org.servers[0].agents.transport_rules[1].name: duplicate rule name \"X\" (first at line 7)\n" +
				"e.yaml:8:50: org.servers[0].agents.transport_rules[1].when.from[0]: \"nobody\" is not a valid address (want local@domain)\n" +
				"e.yaml:8:83: org.servers[0].agents.transport_rules[1].when.header_contains.name: \"a b\" is not a header field name\n" +
				"e.yaml:8:105: org.servers[0].agents.transport_rules[1].when.scl_at_least: an SCL is 0-9, got 10\n" +
				"e.yaml:8:116: org.servers[0].agents.transport_rules[1].then: no action (want reject, prepend_subject, set_header, redirect_to, blind_copy_to or delete)\n" +
				"e.yaml:10:23: org.transport_rules[0].then: reject and delete end a message's rules: neither goes with another action\n" +
				"e.yaml:10:41: org.transport_rules[0].then.reject.status: \"550 5.7.3\": an organisation rule's NDR says 5.7.1 or 5.7.900 to 5.7.999\n" +
				"e.yaml:11:27: org.transport_rules[1].priority: priority 0 is also org.transport_rules[0]'s; rules apply in one order\n" +
				"e.yaml:11:59: org.transport_rules[1].when.recipient_domain_is[0]: \"-x-\" is not a domain name\n" +
				"e.yaml:11:93: org.transport_rules[1].when.attachment_name_matches[0]: \"[\" is not a file name pattern (\"*.exe\")\n" +
				"e.yaml:11:126: org.transport_rules[1].then.set_header.name: \"X:Y\" is not a header field name\n" +
				"e.yaml:11:158: org.transport_rules[1].then.redirect_to[0]: \"z\" is not a valid address (want local@domain)"},
		{"address rewriting", "org:\n  servers:\n    - name: A\n      role: edge\n      agents:\n        address_rewriting:\n          - {internal: '*.b.test', external: c.test, bidirectional: true}\n          - {internal: a@b.test, external: c.test}\n          - {internal: '*@-x', external: a@b.test}\n",
			"e.yaml:7:69: org.servers[0].agents.address_rewriting[0].bidirectional: \"*.b.test\" covers sub-domains: it rewrites outbound only\n" +
				"e.yaml:8:44: org.servers[0].agents.address_rewriting[1].external: \"c.test\" is not a valid address (want local@domain) (an address rewrites to an address)\n" +
				"e.yaml:9:24: org.servers[0].agents.address_rewriting[2].internal: \"*@-x\" is not an address, a domain, *@domain or *.domain\n" +
				"e.yaml:9:42: org.servers[0].agents.address_rewriting[2].external: \"a@b.test\" is not a domain (a domain rewrites to a domain)"},
		{"null values are absent", "org:\n  servers:\n  recipients: ~\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tt.src))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	src := `org:
  servers:
    - &hub {name: HUB1, role: hub, max_hop_count: 10}
    - {<<: *hub, name: HUB2}
    - {<<: *hub, name: HUB3, colour: red}
`
	_, err := Parse("a.yaml", []byte(src))
	want := `a.yaml:5:30: org.servers[2].colour: unknown key`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	s, err := Parse("a.yaml", []byte(strings.Replace(src, ", colour: red", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if hub2, _ := s.Server("HUB2"); hub2.MaxHopCount != 10 || hub2.Role != RoleHub {
		t.Errorf("HUB2 = %+v", hub2)
	}
}

func TestDurationAndBehaviourYAML(t *testing.T) {
	var d struct {
		D Duration  `yaml:"d"`
		B Behaviour `yaml:"b"`
		C Behaviour `yaml:"c"`
	}
	if err := yaml.Unmarshal([]byte("d: 1h30m\nb: reject\nc: {action: stall, duration: 500ms}\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.D.D() != 90*time.Minute || d.B.Action != "reject" || d.C.Duration.D() != 500*time.Millisecond {
		t.Errorf("decoded %+v", d)
	}
	out, err := yaml.Marshal(map[string]Duration{"d": d.D})
	if err != nil || string(out) != "d: 1h30m0s\n" {
		t.Errorf("Marshal = %q, %v", out, err)
	}
	err = yaml.Unmarshal([]byte("d: soon\n"), &d)
	var e *Error
	if !errors.As(err, &e) || e.Line != 1 || e.Col != 4 {
		t.Errorf("bad duration error = %#v", err)
	}
}

func TestDefaultsListing(t *testing.T) {
	out := Defaults()
	for _, want := range []string{"org.servers[].max_hop_count", "60", "10m0s", `SERVER\DefaultN`, "mailflow.test", "internet.hosts[].recipients[].stage"} {
		if !strings.Contains(out, want) {
			t.Errorf("Defaults() lacks %q:\n%s", want, out)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestSliceRoundTrip(t *testing.T) {
	for _, f := range []string{"../scenarios/edge-relay.yaml", "../scenarios/edge-smarthost.yaml"} {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(f, b)
		if err != nil {
			t.Fatalf("%s: marshalled scenario does not parse: %v\n%s", f, err, b)
		}
		if diff := cmp.Diff(s, back, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: round trip changed the scenario (-want +got):\n%s", f, diff)
		}
		sl, err := s.SliceFor("EDGE1")
		if err != nil {
			t.Fatal(err)
		}
		if len(sl.Internet.Hosts) != 0 || len(sl.Internet.DNS) != 0 {
			t.Errorf("%s: slice keeps the Internet", f)
		}
		for _, rc := range sl.Org.ReceiveConnectors {
			if rc.Server != "EDGE1" {
				t.Errorf("%s: slice keeps %s's connector %s", f, rc.Server, rc.Name)
			}
		}
		if _, err := s.SliceFor("NOPE"); err == nil {
			t.Errorf("slice of an unknown server: no error")
		}
	}
}
