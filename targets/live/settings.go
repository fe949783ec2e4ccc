package live

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
)

// Settings are what the user configures the live host with, and where the harness
// serves what: everything Write prints before a run.
type Settings struct {
	Host     Host
	Addr     netip.AddrPort
	Scenario string
	// Edge is the scenario's Edge, which the host plays (addresses already moved onto
	// the pool).
	Edge *scenario.Server
	// Data is the configuration in the shape the shipped profiles render from
	// (profiles.Data), TLS paths in the CA directory.
	Data profiles.Data
	// Hubs name the Hub stand-ins in the order of Data's internal hosts.
	Hubs []string
	// Clients map the scenario's client ranges to the addresses standing for them.
	Clients []Client
	// Serves is what the harness serves at each address of the pool, in order.
	Serves []Use
}

// Client is the address of --listen the harness dials from as a client of Range.
type Client struct {
	Range netip.Prefix
	Addr  netip.Addr
}

// Settings are the configured scenario's.
func (t *Target) Settings() Settings {
	w := t.configured
	st := Settings{Host: t.host, Addr: t.addr, Scenario: t.scenario.File, Edge: w.edge, Data: w.data}
	for _, h := range w.s.ServersByRole(scenario.RoleHub) {
		st.Hubs = append(st.Hubs, h.Name)
	}
	for r, a := range w.plan.clients {
		st.Clients = append(st.Clients, Client{Range: r, Addr: a})
	}
	sort.Slice(st.Clients, func(i, j int) bool { return st.Clients[i].Addr.Less(st.Clients[j].Addr) })
	names := map[netip.Addr][]string{}
	for n, a := range w.zone.Addr {
		names[a] = append(names[a], n)
	}
	for _, u := range w.plan.uses {
		if ns := names[u.Addr]; strings.HasPrefix(u.What, "scenario address") && len(ns) > 0 {
			sort.Strings(ns)
			u.What = strings.Join(ns, ", ") + " (port 25, fake Internet host)"
		}
		st.Serves = append(st.Serves, u)
	}
	return st
}

// Write prints the settings as the user reads them before a run.
func (st Settings) Write(out io.Writer) error {
	d := st.Data
	var b strings.Builder
	fmt.Fprintf(&b, "Live host %s plays %s of %s.\n", st.Host, edgeName(st.Edge), st.Scenario)
	if st.Host.Name != st.Addr.Addr().String() {
		fmt.Fprintf(&b, "(%s resolves to %s.)\n", st.Host.Name, st.Addr.Addr())
	}
	b.WriteString("Configure it so before the run; specs whose world needs other settings are N/A.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(key, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t%s\n", key, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) { row("", format, args...) }
	row("host name", "%s (EHLO, Received, bounces)", d.Hostname)
	row("DNS resolver", "%s port 53, UDP and TCP: its only resolver (the harness's fake DNS)", d.DNS)
	for i, ad := range d.AcceptedDomains {
		key := ""
		if i == 0 {
			key = "accepted domains"
		}
		row(key, "%s (%s): %s", ad.Name, ad.Type, domainRule(ad))
	}
	if len(d.AcceptedDomains) == 0 {
		row("accepted domains", "none")
	}
	if d.InternalHost != "" {
		hub := ""
		if len(st.Hubs) > 0 {
			hub = st.Hubs[0] + " stand-in, "
		}
		row("organisation's mail", "to %s port 25 (%soffers STARTTLS), never looked up in DNS", d.InternalHost, hub)
	}
	if len(d.Recipients) > 0 {
		row("valid recipients", "%s; any other of an authoritative domain: 550 5.1.1", strings.Join(d.Recipients, ", "))
	}
	for i, r := range d.Routes {
		key := ""
		if i == 0 {
			key = "outbound routes"
		}
		row(key, "%s", route(r))
	}
	if len(d.Routes) == 0 {
		row("outbound routes", "none (mail for other domains is not relayed)")
	}
	for i, l := range d.Listeners {
		key := ""
		if i == 0 {
			key = "listeners"
		}
		row(key, "%s", listener(l, st.Addr.Port()))
	}
	row("relay networks", "%s", orNone(strings.Join(d.RelayNetworks, ", "), "none"))
	for _, c := range st.Clients {
		more("%s is the harness's client in the scenario's %s", c.Addr, c.Range)
	}
	if len(d.Users) > 0 {
		var us []string
		for _, u := range d.Users {
			us = append(us, u.Name+" / "+u.Password)
		}
		row("SMTP AUTH users", "%s (PLAIN and LOGIN, after STARTTLS)", strings.Join(us, ", "))
	}
	if len(d.DNSBL) > 0 {
		row("DNS block lists", "%s: refuse listed clients with 5.7.1", strings.Join(d.DNSBL, ", "))
	} else {
		row("DNS block lists", "none")
	}
	row("message size limit", "%s", orDefault(d.MaxMessageSize > 0, fmt.Sprintf("%d octets (552 5.3.4 past it)", d.MaxMessageSize)))
	row("recipients per message", "%s", orDefault(d.MaxRecipients > 0, fmt.Sprintf("%d (452 4.5.3 past it)", d.MaxRecipients)))
	row("hop limit", "%d Received header fields", d.HopLimit)
	row("inactivity timeout", "%s", orDefault(d.InactivityTimeout > 0, d.InactivityTimeout.String()))
	row("queue timers", "retry every %s, delay warning after %s, give up after %s (or as close as the MTA allows)",
		dur(d.RetryInterval), dur(d.DelayWarning), dur(d.Expiry))
	row("TLS certificate", "%s (chain), key %s: for %s and the host's address", d.TLSCert, d.TLSKey, d.Hostname)
	row("trusted CA", "%s, the harness's test CA: the sinks' certificates for outbound TLS", d.CACert)
	for i, a := range agentLines(st.Edge) {
		key := ""
		if i == 0 {
			key = "also"
		}
		row(key, "%s", a)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nThe harness serves, one spec at a time:\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, u := range st.Serves {
		fmt.Fprintf(tw, "  %s\t%s\n", u.Addr, u.What)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func edgeName(e *scenario.Server) string {
	if e == nil {
		return "the Edge"
	}
	return e.Name
}

// domainRule says what the MTA does with mail for an accepted domain.
func domainRule(ad profiles.Domain) string {
	switch ad.Type {
	case profiles.Authoritative:
		return "valid recipients only, relayed to the organisation"
	case profiles.InternalRelay:
		return "any recipient, relayed to the organisation"
	default:
		return "any recipient, relayed by the outbound routes"
	}
}

func route(r profiles.Route) string {
	to := "MX from DNS"
	if len(r.SmartHosts) > 0 {
		to = "smart host " + strings.Join(r.SmartHosts, ", ")
	}
	s := strings.Join(r.Domains, ", ") + " -> " + to
	if r.TLS {
		s += ", STARTTLS required (verified against the trusted CA)"
	}
	if r.Username != "" {
		s += ", AUTH as " + r.Username + " / " + r.Password
	}
	return s
}

func listener(l profiles.Listener, urlPort uint16) string {
	port := fmt.Sprintf("port %d", l.Port)
	if l.Port == 25 && urlPort != 25 {
		port = fmt.Sprintf("port %d (for the scenario's 25)", urlPort)
	}
	var what []string
	switch {
	case l.RequireAuth:
		what = append(what, "AUTH required before MAIL (530 5.7.0)")
	case l.Auth:
		what = append(what, "anonymous, AUTH offered (authenticated clients relay)")
	default:
		what = append(what, "anonymous")
	}
	if l.TLS {
		what = append(what, "STARTTLS offered")
	}
	if l.AcceptAnyRecipient {
		if len(l.RemoteRanges) > 0 {
			what = append(what, "clients in "+strings.Join(l.RemoteRanges, ", ")+" relay anywhere")
		} else {
			what = append(what, "every client relays anywhere")
		}
	} else if len(l.RemoteRanges) > 0 {
		what = append(what, "only clients in "+strings.Join(l.RemoteRanges, ", "))
	}
	return fmt.Sprintf("%s %q: %s", port, l.Name, strings.Join(what, "; "))
}

// agentLines are the Edge's settings beyond what profiles render: what the host must
// also do for this scenario, in Exchange's terms.
func agentLines(e *scenario.Server) []string {
	if e == nil {
		return nil
	}
	var out []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	a := e.Agents
	cf := a.ConnectionFilter
	add(len(cf.IPAllowList) > 0, "connection filter: never block clients in %s", strings.Join(cf.IPAllowList, ", "))
	add(len(cf.IPBlockList) > 0, "connection filter: refuse clients in %s at RCPT", strings.Join(cf.IPBlockList, ", "))
	add(len(cf.BypassedRecipients) > 0, "connection filter: let blocked clients still reach %s", strings.Join(cf.BypassedRecipients, ", "))
	sf := a.SenderFilter
	add(len(sf.BlockedSenders)+len(sf.BlockedDomains) > 0 || sf.BlankSenderBlocking, "sender filter: block %s",
		orNone(strings.Join(append(append([]string{}, sf.BlockedSenders...), sf.BlockedDomains...), ", "), "the blank sender"))
	add(a.SPF.Enabled, "SPF: check MAIL FROM, on fail %s", orNone(a.SPF.Action, scenario.SPFStamp))
	add(len(a.AttachmentFilter.BlockedNames)+len(a.AttachmentFilter.BlockedTypes) > 0, "attachment filter: %s %s",
		orNone(a.AttachmentFilter.Action, scenario.AttachmentReject), strings.Join(append(append([]string{}, a.AttachmentFilter.BlockedNames...), a.AttachmentFilter.BlockedTypes...), ", "))
	add(a.Antivirus.Enabled, "antivirus (ClamAV): %s infected messages", orNone(a.Antivirus.Action, scenario.AntivirusDelete))
	add(a.ContentFilter.Enabled, "content filter (spamd): as the scenario's agents.content_filter says")
	for _, r := range a.TransportRules {
		out = append(out, "transport rule "+r.Name)
	}
	for _, r := range a.AddressRewriting {
		out = append(out, fmt.Sprintf("rewrite %s as %s (bidirectional %v)", r.Internal, r.External, r.Bidirectional))
	}
	add(len(e.RecipientBlockList) > 0, "refuse recipients %s with 550 5.1.1", strings.Join(e.RecipientBlockList, ", "))
	add(e.RecipientFiltering != nil && !*e.RecipientFiltering, "no recipient filtering: accept any recipient of the accepted domains")
	add(e.SpoolLimit > 0, "back pressure: 452 4.3.1 at end of data while %d octets are queued", e.SpoolLimit)
	return out
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func orDefault(set bool, s string) string {
	if !set {
		return "the MTA's default"
	}
	return s
}

func dur(d time.Duration) string {
	if d == 0 {
		return "the MTA's default"
	}
	return d.String()
}
