package hub

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
)

// Three sites in a line with a hub site in the middle, a fourth off to the side, and
// an Edge in London that sources the Internet connector.
const line = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: lon}
    - {name: par, hub: true}
    - {name: ber}
    - {name: mad}
  site_links:
    - {sites: [lon, par], cost: 10}
    - {sites: [par, ber], cost: 10, max_message_size: 1000000}
    - {sites: [lon, mad], cost: 5}
  servers:
    - {name: EDGE1, role: edge, site: lon}
    - {name: HUB-LON, role: hub, site: lon}
    - {name: HUB-PAR, role: hub, site: par}
    - {name: HUB-BER1, role: hub, site: ber}
    - {name: HUB-BER2, role: hub, site: ber}
    - {name: HUB-MAD, role: hub, site: mad}
    - {name: MBX-LON, role: mailbox, site: lon}
    - {name: MBX-BER, role: mailbox, site: ber}
    - {name: MBX-MAD, role: mailbox, site: mad}
  send_connectors:
    - {name: To Internet, address_spaces: ["*"], source: [EDGE1], cost: 1}
  recipients:
    - {mail: alice@contoso.test, mailbox: MBX-LON}
    - {mail: bob@contoso.test, mailbox: MBX-BER}
    - {mail: carol@contoso.test, mailbox: MBX-MAD}
`

// dir is a directory of canned entries.
type dir map[string]*directory.Entry

func (d dir) Lookup(_ context.Context, addr string) (*directory.Entry, error) {
	if e, ok := d[strings.ToLower(addr)]; ok {
		return e, nil
	}
	if addr == "down@contoso.test" {
		return nil, &directory.UnavailableError{Err: errors.New("connection refused")}
	}
	return nil, directory.ErrNotFound
}

func router(t *testing.T, server string) *Router {
	t.Helper()
	s, err := scenario.Parse("line.yaml", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	d := dir{
		"alice@contoso.test":   {Mail: "alice@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-LON"},
		"a.smith@contoso.test": {Mail: "alice@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-LON"},
		"bob@contoso.test":     {Mail: "bob@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-BER"},
		"carol@contoso.test":   {Mail: "carol@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-MAD"},
		"team@contoso.test":    {Mail: "team@contoso.test", Type: directory.TypeGroup, Members: []string{"alice@contoso.test", "bob@contoso.test"}},
		"ext@contoso.test":     {Mail: "ext@contoso.test", Type: directory.TypeContact, External: "ext@fabrikam.test"},
	}
	peers := map[string]string{}
	for i, sv := range s.Org.Servers {
		peers[sv.Name] = "127.0.0." + string(rune('1'+i)) + ":25"
	}
	r, err := NewRouter(s, server, categorizer.New(d), peers)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoute(t *testing.T) {
	tests := []struct {
		name   string
		server string
		rcpts  []string
		size   int
		// want: one line per decision, "kind key -> hosts-count [rcpt,...]"
		want []string
	}{
		{"same-site mailbox: local delivery (ROUTE-010)", "HUB-LON", []string{"alice@contoso.test"}, 100,
			[]string{"mailbox mailbox:mbx-lon -> MBX-LON [alice@contoso.test]"}},
		{"secondary proxy delivered to the primary, original kept (CAT-001)", "HUB-LON", []string{"A.Smith@contoso.test"}, 100,
			[]string{"mailbox mailbox:mbx-lon -> MBX-LON [alice@contoso.test<A.Smith@contoso.test]"}},
		{"remote site through the hub site on the path (ROUTE-006)", "HUB-LON", []string{"bob@contoso.test"}, 100,
			[]string{"site site:par -> par [bob@contoso.test]"}},
		{"from the hub site onwards to the destination (ROUTE-006)", "HUB-PAR", []string{"bob@contoso.test"}, 100,
			[]string{"site site:ber -> ber [bob@contoso.test]"}},
		{"direct relay when no hub site on the path (ROUTE-005)", "HUB-LON", []string{"carol@contoso.test"}, 100,
			[]string{"site site:mad -> mad [carol@contoso.test]"}},
		{"group expanded, members routed separately (CAT-003)", "HUB-LON", []string{"team@contoso.test"}, 100,
			[]string{"mailbox mailbox:mbx-lon -> MBX-LON [alice@contoso.test<team@contoso.test]", "site site:par -> par [bob@contoso.test<team@contoso.test]"}},
		{"contact through the connector's source server (CAT-004)", "HUB-LON", []string{"ext@contoso.test"}, 100,
			[]string{"connector conn:To Internet -> EDGE1 [ext@fabrikam.test<ext@contoso.test]"}},
		{"unknown recipient fails 5.1.1", "HUB-LON", []string{"nobody@contoso.test"}, 100,
			[]string{"failed failed:nobody@contoso.test ->  [nobody@contoso.test]"}},
		{"oversize for a site link fails 5.3.4 (ROUTE-016)", "HUB-PAR", []string{"bob@contoso.test"}, 2000000,
			[]string{"failed failed:bob@contoso.test ->  [bob@contoso.test]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := router(t, tt.server).Route(context.Background(), tt.rcpts, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				var rs []string
				for _, rc := range d.Recipients {
					s := rc.Address
					if !strings.EqualFold(rc.Original, rc.Address) {
						s += "<" + rc.Original
					}
					rs = append(rs, s)
				}
				got = append(got, string(d.Kind)+" "+d.Key+" -> "+d.NextHop+" ["+strings.Join(rs, ",")+"]")
				if d.Kind != KindFailed && len(d.Hosts) == 0 {
					t.Errorf("%s: no hosts", d.Key)
				}
				if (d.Kind == KindSite || d.Kind == KindMailbox) && !d.RequireTLS {
					t.Errorf("%s: org peer without TLS (ROUTE-017)", d.Key)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestRouteFailureCodes(t *testing.T) {
	r := router(t, "HUB-PAR")
	ds, _ := r.Route(context.Background(), []string{"nobody@contoso.test", "bob@contoso.test"}, 2000000)
	codes := map[string]string{}
	for _, d := range ds {
		codes[d.Recipients[0].Address] = d.Status
	}
	if codes["nobody@contoso.test"] != "5.1.1" || codes["bob@contoso.test"] != "5.3.4" {
		t.Errorf("statuses %v, want 5.1.1 and 5.3.4", codes)
	}
}

func TestSiteHopListsEveryHubOfTheSite(t *testing.T) {
	// ROUTE-015/ROUTE-008 fail-over: every Hub of the next site, in a stable order.
	ds, err := router(t, "HUB-PAR").Route(context.Background(), []string{"bob@contoso.test"}, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("%v %v", ds, err)
	}
	if len(ds[0].Hosts) != 2 {
		t.Errorf("hosts %v, want both Berlin Hubs", ds[0].Hosts)
	}
	if ds[0].Path.TieBreak != routing.RuleOnlyPath || !strings.Contains(ds[0].Reason, "par -(10)-> ber") {
		t.Errorf("reason %q", ds[0].Reason)
	}
}

func TestDirectoryOutageIsTemporary(t *testing.T) {
	// CAT-006: no decision at all, an error the queue treats as temporary.
	_, err := router(t, "HUB-LON").Route(context.Background(), []string{"alice@contoso.test", "down@contoso.test"}, 10)
	if !categorizer.IsTemporary(err) {
		t.Errorf("err %v, want a temporary error", err)
	}
}

func TestSiteHopBacksOffTowardsTheSource(t *testing.T) {
	// ROUTE-008: London to Madrid is direct; with no hub site, the hop lists Madrid's
	// Hub only. From Paris to Berlin likewise. A three-site direct path backs off.
	s, err := scenario.Parse("line.yaml", []byte(strings.Replace(line, "{name: par, hub: true}", "{name: par}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	d := dir{"bob@contoso.test": {Mail: "bob@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-BER"}}
	peers := map[string]string{"HUB-PAR": "par:25", "HUB-BER1": "ber1:25", "HUB-BER2": "ber2:25"}
	r, err := NewRouter(s, "HUB-LON", categorizer.New(d), peers)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := r.Route(context.Background(), []string{"bob@contoso.test"}, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("%v %v", ds, err)
	}
	if got := strings.Join(ds[0].Hosts, " "); got != "ber1:25 ber2:25 par:25" {
		t.Errorf("hosts %q, want Berlin's Hubs then Paris's", got)
	}
}

func TestRoutersShareOneOrg(t *testing.T) {
	// Hubs started together share one Org; each still routes from its own site.
	s, err := scenario.Parse("line.yaml", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	org, err := NewOrg(s, map[string]string{"HUB-PAR": "par:25", "HUB-BER1": "ber1:25", "HUB-BER2": "ber2:25", "MBX-BER": "mbx-ber:25"})
	if err != nil {
		t.Fatal(err)
	}
	d := dir{"bob@contoso.test": {Mail: "bob@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-BER"}}
	for server, want := range map[string]string{"HUB-LON": "site:par par:25", "HUB-PAR": "site:ber ber1:25 ber2:25", "HUB-BER1": "mailbox:mbx-ber mbx-ber:25"} {
		r, err := org.Router(server, categorizer.New(d))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := r.Route(context.Background(), []string{"bob@contoso.test"}, 10)
		if err != nil || len(ds) != 1 {
			t.Fatalf("%s: %v %v", server, ds, err)
		}
		if got := ds[0].Key + " " + strings.Join(ds[0].Hosts, " "); got != want {
			t.Errorf("%s: next hop %s, want %s", server, got, want)
		}
	}
	if _, err := org.Router("HUB-NOWHERE", categorizer.New(d)); err == nil {
		t.Error("a router for a server the organisation does not have")
	}
}
