// Package mtaconf translates the Edge server of a scenario (already moved into a
// target's addresses) into what a third-party MTA playing it must be configured with,
// as profiles.Data: the mta:NAME targets render a profile from it, and the live host
// target prints it for the user and compares it between scenarios.
package mtaconf

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
)

// SubmissionPort is where the users of a scenario with mailboxes submit (MBX-004): the
// MTA's own message submission listener, beside the Dovecot holding their mailboxes.
const SubmissionPort = 587

// Inputs is what the target decides and the scenario does not say.
type Inputs struct {
	// DNS is the fake DNS server's address.
	DNS netip.Addr
	// Internal are the addresses of the organisation's internal hosts (the Hub
	// stand-ins); the MTA relays accepted-domain mail to the first.
	Internal []string
	// Queue timers the MTA is given, whatever the scenario says.
	Retry, DelayWarning, Expiry time.Duration
	// Paths of the PEM files as the MTA sees them.
	TLSCert, TLSKey, CACert string
}

// Data is the configuration of an MTA playing edge in s.
func Data(s *scenario.Scenario, edge *scenario.Server, in Inputs) profiles.Data {
	d := profiles.Data{
		Hostname: strings.TrimSuffix(edge.FQDN, "."), DNS: in.DNS.String(),
		HopLimit: edge.MaxHopCount, RetryInterval: in.Retry, DelayWarning: in.DelayWarning, Expiry: in.Expiry,
		InactivityTimeout: s.InactivityTimeout(edge.Name),
		TLSCert:           in.TLSCert, TLSKey: in.TLSKey, CACert: in.CACert,
	}
	if len(in.Internal) > 0 {
		d.InternalHost = in.Internal[0]
	}
	auth := map[string]bool{}
	for _, ad := range s.Org.AcceptedDomains {
		d.AcceptedDomains = append(d.AcceptedDomains, profiles.Domain{Name: strings.ToLower(ad.Domain), Type: string(ad.Type)})
		if ad.Type == scenario.Authoritative {
			auth[strings.ToLower(ad.Domain)] = true
		}
	}
	for _, r := range s.Org.Recipients {
		for _, a := range append([]string{r.Mail}, r.Proxies...) {
			a = strings.ToLower(a)
			if i := strings.LastIndexByte(a, '@'); i > 0 && auth[a[i+1:]] {
				d.Recipients = append(d.Recipients, a)
			}
		}
		if r.Password != "" {
			d.Users = append(d.Users, profiles.User{Name: r.Mail, Password: r.Password})
		}
	}
	sort.Strings(d.Recipients)
	if d.Mailboxes = mailboxes(s, edge.Name, auth); len(d.Mailboxes) > 0 {
		// The users' mail client submits on port 587 of their mailbox server (MBX-004):
		// here the MTA's, an MSA (AUTH after STARTTLS, required before MAIL).
		has587 := false
		for _, rc := range s.ReceiveConnectorsOf(edge.Name) {
			_, port, _ := net.SplitHostPort(rc.Bind)
			has587 = has587 || port == strconv.Itoa(SubmissionPort)
		}
		if !has587 {
			d.Listeners = append(d.Listeners, profiles.Listener{Name: "Submission", Port: SubmissionPort, TLS: true, Auth: true, RequireAuth: true})
		}
	}
	for _, sc := range s.Org.SendConnectors {
		if !containsFold(sc.Source, edge.Name) {
			continue
		}
		r := profiles.Route{Domains: sc.AddressSpaces, SmartHosts: sc.SmartHosts, TLS: sc.TLS}
		if sc.Auth != nil {
			r.Username, r.Password = sc.Auth.Username, sc.Auth.Password
		}
		d.Routes = append(d.Routes, r)
	}
	for _, rc := range s.ReceiveConnectorsOf(edge.Name) {
		_, port, _ := net.SplitHostPort(rc.Bind)
		n, _ := strconv.Atoi(port)
		l := profiles.Listener{Name: rc.Name, Port: n, TLS: rc.TLS, AcceptAnyRecipient: rc.AcceptAnyRecipient, RemoteRanges: rc.RemoteIPRanges}
		anonymous := false
		for _, p := range rc.Permissions {
			switch p {
			case scenario.PermExchangeUsers:
				l.Auth = true
			case scenario.PermAnonymous, scenario.PermPartners:
				anonymous = true
			}
		}
		l.RequireAuth = l.Auth && !anonymous
		if rc.AcceptAnyRecipient && len(rc.RemoteIPRanges) > 0 {
			d.RelayNetworks = append(d.RelayNetworks, rc.RemoteIPRanges...)
		}
		if rc.MaxMessageSize > 0 && (d.MaxMessageSize == 0 || int64(rc.MaxMessageSize) < d.MaxMessageSize) {
			d.MaxMessageSize = int64(rc.MaxMessageSize)
		}
		if rc.MaxRecipients > 0 && (d.MaxRecipients == 0 || rc.MaxRecipients < d.MaxRecipients) {
			d.MaxRecipients = rc.MaxRecipients
		}
		d.Listeners = append(d.Listeners, l)
	}
	// The Edge's block list providers are what the MTA checks clients against; the
	// zones the Internet serves come too, as before the Edge had agents.
	var zones []string
	if cf := edge.Agents.ConnectionFilter; cf.Enabled == nil || *cf.Enabled {
		for _, p := range cf.Providers {
			zones = append(zones, p.Zone)
		}
	}
	for _, z := range s.Internet.DNSBL {
		zones = append(zones, z.Zone)
	}
	for _, z := range zones {
		z = strings.TrimSuffix(strings.ToLower(z), ".")
		if !containsFold(d.DNSBL, z) {
			d.DNSBL = append(d.DNSBL, z)
		}
	}
	return d
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// mailboxes are the recipients the MTA delivers to a Dovecot in its own container
// instead of relaying them to the Hubs: in a scenario whose recipients have passwords
// that no receive connector of the Edge takes for SMTP AUTH (none grants
// ExchangeUsers), the passwords are for logging in to the mailbox (the MBX specs'
// scenarios), so each recipient of an authoritative domain with a password gets a
// mailbox (its primary address; proxies still go to the Hubs). Every other scenario,
// those whose specs judge what the Hubs received among them, is left as it was.
func mailboxes(s *scenario.Scenario, edge string, auth map[string]bool) []profiles.Mailbox {
	for _, rc := range s.ReceiveConnectorsOf(edge) {
		for _, p := range rc.Permissions {
			if p == scenario.PermExchangeUsers {
				return nil
			}
		}
	}
	var out []profiles.Mailbox
	for _, r := range s.Org.Recipients {
		a := strings.ToLower(r.Mail)
		if i := strings.LastIndexByte(a, '@'); r.Password == "" || i <= 0 || !auth[a[i+1:]] {
			continue
		}
		out = append(out, profiles.Mailbox{Address: a, Password: r.Password, Quota: r.Quota})
	}
	return out
}
