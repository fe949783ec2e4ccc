package smtpd

import "github.com/mailflow/mailflow/scenario"

// rights are the Exchange receive permissions (ms-Exch-SMTP-*) a session holds.
type rights struct {
	Submit             bool
	AcceptAnyRecipient bool
	AcceptAnySender    bool
	AcceptRouting      bool
	BypassAntiSpam     bool
	AcceptOrgHeaders   bool
}

// rightsFor follows the permission-group table of EX-RECVCONN: AnonymousUsers may submit
// to accepted domains but not relay; Partners (domain-secure TLS sessions) likewise;
// ExchangeUsers (authenticated) may relay; ExchangeServers hold everything. An explicit
// Accept-Any-Recipient grant on the connector (IP-scoped relay) applies to every session
// the connector serves. The connector of the organisation's own servers grants
// ms-Exch-Bypass-Anti-Spam, as ExchangeServers does (FILTER-007).
func rightsFor(c *Connector, authenticated, tlsOn bool) rights {
	var r rights
	for _, p := range c.Permissions {
		switch p {
		case scenario.PermAnonymous:
			if !authenticated {
				r.Submit, r.AcceptAnySender, r.AcceptRouting = true, true, true
			}
		case scenario.PermPartners:
			if tlsOn {
				r.Submit, r.AcceptRouting = true, true
			}
		case scenario.PermExchangeUsers:
			if authenticated {
				r.Submit, r.AcceptAnyRecipient, r.BypassAntiSpam, r.AcceptRouting = true, true, true, true
			}
		case scenario.PermExchangeServers:
			if authenticated || c.Internal {
				r = rights{true, true, true, true, true, true}
			}
		}
	}
	if c.AcceptAnyRecipient {
		r.AcceptAnyRecipient = true
		r.Submit = true
	}
	if c.Internal {
		r.BypassAntiSpam = true
	}
	return r
}

func (c *Connector) offersAuth() bool {
	for _, p := range c.Permissions {
		if p == scenario.PermExchangeUsers || p == scenario.PermExchangeServers {
			return true
		}
	}
	return false
}
