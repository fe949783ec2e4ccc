package scenario

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Every default of the scenario format is here: the table below is what Defaults
// prints (for people reading a scenario), and ApplyDefaults right under it is the only
// code that fills them in. Change both together.
const (
	// FallbackDomain completes server FQDNs and the default domain when a scenario
	// declares no accepted domain.
	FallbackDomain     = "mailflow.test"
	DefaultMaxHopCount = 60 // Exchange's default Received-header limit (TRACE-004)
	// Exchange's queue timers (EX-INTERVALS, SPEC §13), QUEUE-004, QUEUE-005, QUEUE-006: a
	// Hub retries 6 times 5 minutes apart, then every 10 minutes; an Edge 6 times 10
	// minutes apart, then every 30 minutes. Delay DSN at 4 hours, expiry at 2 days.
	DefaultRetryInterval              = 10 * time.Minute
	DefaultEdgeRetryInterval          = 30 * time.Minute
	DefaultTransientRetryInterval     = 5 * time.Minute
	DefaultEdgeTransientRetryInterval = 10 * time.Minute
	DefaultTransientRetryCount        = 6
	DefaultDelayNotification          = 4 * time.Hour
	DefaultMessageExpiration          = 48 * time.Hour
	DefaultPoisonThreshold            = 2
	DefaultInactivityTimeout          = 5 * time.Minute // a receive connector's ConnectionInactivityTimeout
	DefaultBind                       = ":25"
	DefaultDomainType                 = Authoritative // New-AcceptedDomain's default DomainType
	DefaultAction                     = "accept"
	DefaultStage                      = "data" // host-wide behaviours
	DefaultRecipientStage             = "rcpt" // per-recipient behaviours
	DefaultAttachmentType             = "application/octet-stream"
)

// Exchange 2003's routing group connector: cost 1 unless set (New-RoutingGroupConnector
// -Cost), and the link-state minor-change delay, during which a connector marked down is
// neither tried nor marked up again, against oscillation (EX03-LINKSTATE).
const (
	DefaultConnectorCost = 1
	MinorChangeDelay     = 10 * time.Minute
)

// Exchange 2010's shadow redundancy (EX-SHADOW, QUEUE-012): on by default
// (ShadowRedundancyEnabled), a heartbeat every 15 minutes (ShadowHeartbeatTimeoutInterval
// from 2010 SP1; RTM had 5), 3 unanswered in a row make the primary failed
// (ShadowHeartbeatRetryCount), and a shadow copy is dropped after 2 days at most
// (ShadowMessageAutoDiscardInterval).
const (
	DefaultShadowRedundancy          = true
	DefaultShadowHeartbeatTimeout    = 15 * time.Minute
	DefaultShadowHeartbeatRetryCount = 3
	DefaultShadowMessageAutoDiscard  = 48 * time.Hour
)

// The Edge agents' defaults (FILTER-008, FILTER-014): Exchange turns the anti-spam agents
// on for an Edge, with nothing configured; a provider's answer is waited for a short
// while only, since a block list is advice; the sender filter refuses.
const (
	DefaultLookupTimeout      = 2 * time.Second
	DefaultSenderFilterAction = SenderFilterReject
	DefaultSPFAction          = SPFStamp
	// DefaultRuleRejectStatus is a transport rule's refusal unless it gives its own
	// (FILTER-011 (a)).
	DefaultRuleRejectStatus = "550 5.7.1"
	// DefaultAttachmentAction is Exchange's: a blocked attachment refuses the message.
	DefaultAttachmentAction = AttachmentReject
	// DefaultAntivirusAction is Exchange's anti-malware default: an infected message
	// is deleted.
	DefaultAntivirusAction = AntivirusDelete
	// DefaultStampSCL is the SCL a message from a blocked sender gets when the sender
	// filter stamps rather than refuses: the highest, spam for certain.
	DefaultStampSCL = 9
)

var defaultTable = [][2]string{
	{"org.accepted_domains[].type", string(DefaultDomainType)},
	{"org.servers[].fqdn", `lower(name) + "." + first accepted domain ("*." stripped), or ` + FallbackDomain},
	{"org.servers[].recipient_filtering", "true on edge servers, false on others"},
	{"org.servers[].max_hop_count", fmt.Sprint(DefaultMaxHopCount)},
	{"org.servers[].spool_limit", "0 (no back pressure)"},
	{"org.servers[].retry_interval", Duration(DefaultEdgeRetryInterval).String() + " on edge servers, " + Duration(DefaultRetryInterval).String() + " on others"},
	{"org.servers[].transient_retry_interval", Duration(DefaultEdgeTransientRetryInterval).String() + " on edge servers, " + Duration(DefaultTransientRetryInterval).String() + " on others; never longer than retry_interval"},
	{"org.servers[].transient_retry_count", fmt.Sprint(DefaultTransientRetryCount)},
	{"org.servers[].delay_notification", Duration(DefaultDelayNotification).String()},
	{"org.servers[].message_expiration", Duration(DefaultMessageExpiration).String()},
	{"org.servers[].poison_threshold", fmt.Sprint(DefaultPoisonThreshold)},
	{"org.servers[].shadow_redundancy", fmt.Sprint(DefaultShadowRedundancy) + " on hub and edge servers, false on others"},
	{"org.servers[].shadow_heartbeat_timeout", Duration(DefaultShadowHeartbeatTimeout).String()},
	{"org.servers[].shadow_heartbeat_retry_count", fmt.Sprint(DefaultShadowHeartbeatRetryCount)},
	{"org.servers[].shadow_message_auto_discard", Duration(DefaultShadowMessageAutoDiscard).String()},
	{"org.servers[].agents.connection_filter.enabled", "true on edge servers"},
	{"org.servers[].agents.connection_filter.lookup_timeout", Duration(DefaultLookupTimeout).String()},
	{"org.servers[].agents.connection_filter.block_list_providers[].name", "the zone"},
	{"org.servers[].agents.sender_filter.enabled", "true on edge servers"},
	{"org.servers[].agents.sender_filter.action", DefaultSenderFilterAction},
	{"org.servers[].agents.sender_filter.stamp_scl", fmt.Sprint(DefaultStampSCL)},
	{"org.servers[].agents.spf.enabled", "false"},
	{"org.servers[].agents.spf.action", DefaultSPFAction},
	{"org.servers[].agents.attachment_filter.enabled", "true on edge servers"},
	{"org.servers[].agents.attachment_filter.action", DefaultAttachmentAction},
	{"org.servers[].agents.attachment_filter.reject_response", `"Message rejected due to unacceptable attachments"`},
	{"org.servers[].agents.antivirus.enabled", "false"},
	{"org.servers[].agents.antivirus.action", DefaultAntivirusAction},
	{"org.servers[].agents.antivirus.reject_response", `"Message rejected: malware detected"`},
	{"org.servers[].agents.antivirus.notify_sender", "false"},
	{"org.servers[].agents.content_filter.enabled", "false"},
	{"org.servers[].agents.content_filter.scl_delete_threshold", "off"},
	{"org.servers[].agents.content_filter.scl_reject_threshold", "off"},
	{"org.servers[].agents.content_filter.scl_quarantine_threshold", "off"},
	{"org.servers[].agents.content_filter.reject_response", `"Message rejected due to content restrictions"`},
	{"org.servers[].agents.transport_rules[].priority", "the rule's index in its list"},
	{"org.servers[].agents.transport_rules[].then.reject.status", DefaultRuleRejectStatus},
	{"org.servers[].agents.transport_rules[].then.reject.text", `"Delivery not authorized, message refused"`},
	{"org.transport_rules[].priority", "the rule's index in its list"},
	{"org.transport_rules[].then.reject.status", DefaultRuleRejectStatus},
	{"org.transport_rules[].then.reject.text", `"Delivery not authorized, message refused"`},
	{"org.routing", string(RoutingSites)},
	{"org.routing_groups[].master", "the group's first Hub"},
	{"org.routing_group_connectors[].cost", fmt.Sprint(DefaultConnectorCost)},
	{"org.routing_group_connectors[].local_bridgeheads", "every Hub of the from group"},
	{"org.routing_group_connectors[].address_space", "*"},
	{"org.receive_connectors[].name", `SERVER\DefaultN (N: the connector's index among its server's connectors, from 0)`},
	{"org.receive_connectors[].bind", DefaultBind},
	{"org.receive_connectors[].inactivity_timeout", Duration(DefaultInactivityTimeout).String()},
	{"org.receive_connectors[].auth_requires_tls", "true when the connector offers TLS, false otherwise"},
	{"org.receive_connectors[].tarpit_interval", "0s (no tarpit)"},
	{"org.send_connectors[].enabled", "true"},
	{"org.recipients[].type", string(RecipientMailbox)},
	{"internet.hosts[].behaviour.action", DefaultAction + " (also for per-recipient behaviours)"},
	{"internet.hosts[].behaviour.stage", DefaultStage},
	{"internet.hosts[].recipients[].stage", DefaultRecipientStage},
	{"messages[].attachments[].content_type", DefaultAttachmentType},
	{"timeline[].host.behaviour", "as internet.hosts[].behaviour (stage " + DefaultStage + ")"},
	{"behaviour code (defer)", "421 at greeting, 451 elsewhere"},
	{"behaviour code (reject)", "554 at greeting, 550 elsewhere"},
	{"behaviour enhanced", `class of the code + ".0.0" (none at greeting, none for accept)`},
	{"default accepted domain", `the one marked default, else the first ("*." stripped), else ` + FallbackDomain},
	{"server, site and mailbox references", "rewritten to the spelling of the declaration (names ignore case)"},
}

// Defaults lists every default ApplyDefaults fills in, for humans.
func Defaults() string {
	var b strings.Builder
	b.WriteString("Defaults applied to a scenario when a key is absent:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, row := range defaultTable {
		fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
	return b.String()
}

// ApplyDefaults fills in every absent value listed by Defaults. Parse calls it after
// validation; it is idempotent, so scenarios built in Go can call it too.
func (s *Scenario) ApplyDefaults() {
	// A map, not Server: a lookup per recipient through every server made completing a
	// large organisation quadratic.
	serverNames := make(map[string]string, len(s.Org.Servers))
	for _, sv := range s.Org.Servers {
		if k := strings.ToLower(sv.Name); serverNames[k] == "" {
			serverNames[k] = sv.Name
		}
	}
	canon := func(name string) string {
		if n, ok := serverNames[strings.ToLower(name)]; ok {
			return n
		}
		return name
	}
	for i := range s.Org.AcceptedDomains {
		if s.Org.AcceptedDomains[i].Type == "" {
			s.Org.AcceptedDomains[i].Type = DefaultDomainType
		}
	}
	siteNames := map[string]string{}
	for _, site := range s.Org.Sites {
		siteNames[strings.ToLower(site.Name)] = site.Name
	}
	canonSite := func(name string) string {
		if n, ok := siteNames[strings.ToLower(name)]; ok {
			return n
		}
		return name
	}
	for i := range s.Org.SiteLinks {
		for j, n := range s.Org.SiteLinks[i].Sites {
			s.Org.SiteLinks[i].Sites[j] = canonSite(n)
		}
	}
	ruleDefaults(s.Org.TransportRules)
	domain := s.firstDomain()
	for i := range s.Org.Servers {
		sv := &s.Org.Servers[i]
		sv.Site = canonSite(sv.Site)
		if sv.FQDN == "" {
			sv.FQDN = strings.ToLower(sv.Name) + "." + domain
		}
		if sv.RecipientFiltering == nil {
			on := sv.Role == RoleEdge
			sv.RecipientFiltering = &on
		}
		if sv.MaxHopCount == 0 {
			sv.MaxHopCount = DefaultMaxHopCount
		}
		edge := sv.Role == RoleEdge
		if sv.RetryInterval == 0 {
			sv.RetryInterval = Duration(pick(edge, DefaultEdgeRetryInterval, DefaultRetryInterval))
		}
		if sv.TransientRetryInterval == 0 {
			sv.TransientRetryInterval = min(Duration(pick(edge, DefaultEdgeTransientRetryInterval, DefaultTransientRetryInterval)), sv.RetryInterval)
		}
		if sv.TransientRetryCount == nil {
			n := DefaultTransientRetryCount
			sv.TransientRetryCount = &n
		}
		if sv.DelayNotification == 0 {
			sv.DelayNotification = Duration(DefaultDelayNotification)
		}
		if sv.MessageExpiration == 0 {
			sv.MessageExpiration = Duration(DefaultMessageExpiration)
		}
		if sv.PoisonThreshold == nil {
			n := DefaultPoisonThreshold
			sv.PoisonThreshold = &n
		}
		if sv.ShadowRedundancy == nil {
			on := DefaultShadowRedundancy && sv.Role != RoleMailbox
			sv.ShadowRedundancy = &on
		}
		if sv.ShadowHeartbeatTimeout == 0 {
			sv.ShadowHeartbeatTimeout = Duration(DefaultShadowHeartbeatTimeout)
		}
		if sv.ShadowHeartbeatRetryCount == nil {
			n := DefaultShadowHeartbeatRetryCount
			sv.ShadowHeartbeatRetryCount = &n
		}
		if sv.ShadowMessageAutoDiscard == 0 {
			sv.ShadowMessageAutoDiscard = Duration(DefaultShadowMessageAutoDiscard)
		}
		if edge {
			sv.Agents.applyDefaults()
		}
	}
	s.routingGroupDefaults(canon)
	perServer := map[string]int{}
	for i := range s.Org.ReceiveConnectors {
		rc := &s.Org.ReceiveConnectors[i]
		rc.Server = canon(rc.Server)
		k := strings.ToLower(rc.Server)
		if rc.Name == "" {
			rc.Name = defaultReceiveConnectorName(rc.Server, perServer[k])
		}
		perServer[k]++
		if rc.Bind == "" {
			rc.Bind = DefaultBind
		}
		if rc.InactivityTimeout == 0 {
			rc.InactivityTimeout = Duration(DefaultInactivityTimeout)
		}
		if rc.AuthRequiresTLS == nil {
			on := rc.TLS
			rc.AuthRequiresTLS = &on
		}
	}
	for i := range s.Org.SendConnectors {
		sc := &s.Org.SendConnectors[i]
		if sc.Enabled == nil {
			on := true
			sc.Enabled = &on
		}
		for j, src := range sc.Source {
			sc.Source[j] = canon(src)
		}
	}
	for i := range s.Org.Recipients {
		r := &s.Org.Recipients[i]
		if r.Type == "" {
			r.Type = RecipientMailbox
		}
		if r.Mailbox != "" {
			r.Mailbox = canon(r.Mailbox)
		}
	}
	for i := range s.Internet.Hosts {
		h := &s.Internet.Hosts[i]
		defaultBehaviour(&h.Behaviour, DefaultStage)
		for a, b := range h.Recipients {
			defaultBehaviour(&b, DefaultRecipientStage)
			h.Recipients[a] = b
		}
	}
	for i := range s.Messages {
		s.Messages[i].Via = canon(s.Messages[i].Via)
		for j := range s.Messages[i].Attachments {
			if a := &s.Messages[i].Attachments[j]; a.ContentType == "" {
				a.ContentType = DefaultAttachmentType
			}
		}
	}
	for i := range s.Timeline {
		st := &s.Timeline[i]
		st.Down, st.Up = canonIf(st.Down, canon), canonIf(st.Up, canon)
		if st.Host != nil {
			defaultBehaviour(&st.Host.Behaviour, DefaultStage)
		}
	}
}

func canonIf(name string, canon func(string) string) string {
	if name == "" {
		return ""
	}
	return canon(name)
}

// defaultReceiveConnectorName echoes Exchange's "Default SERVER" connectors while
// staying unique per server.
func defaultReceiveConnectorName(server string, index int) string {
	return fmt.Sprintf(`%s\Default%d`, server, index)
}

func defaultBehaviour(b *Behaviour, stage string) {
	if b.Action == "" {
		b.Action = DefaultAction
	}
	if b.Stage == "" {
		b.Stage = stage
	}
	if b.Code == 0 {
		greeting := b.Stage == "greeting"
		switch {
		case b.Action == "defer" && greeting:
			b.Code = 421
		case b.Action == "defer":
			b.Code = 451
		case b.Action == "reject" && greeting:
			b.Code = 554
		case b.Action == "reject":
			b.Code = 550
		}
	}
	// Enhanced codes exist only after EHLO, so a greeting reply carries none.
	if b.Enhanced == "" && b.Code >= 400 && b.Stage != "greeting" {
		b.Enhanced = fmt.Sprintf("%d.0.0", b.Code/100)
	}
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// ruleDefaults gives each rule its priority (its place) and its refusal's status.
func ruleDefaults(rs []TransportRule) {
	for i := range rs {
		if rs[i].Priority == nil {
			n := i
			rs[i].Priority = &n
		}
		if r := rs[i].Then.Reject; r != nil && r.Status == "" {
			r.Status = DefaultRuleRejectStatus
		}
	}
}

// applyDefaults completes an Edge's agents.
func (a *Agents) applyDefaults() {
	cf := &a.ConnectionFilter
	if cf.Enabled == nil {
		on := true
		cf.Enabled = &on
	}
	if cf.LookupTimeout == 0 {
		cf.LookupTimeout = Duration(DefaultLookupTimeout)
	}
	for i := range cf.Providers {
		if cf.Providers[i].Name == "" {
			cf.Providers[i].Name = cf.Providers[i].Zone
		}
	}
	sf := &a.SenderFilter
	if sf.Enabled == nil {
		on := true
		sf.Enabled = &on
	}
	if sf.Action == "" {
		sf.Action = DefaultSenderFilterAction
	}
	if sf.StampSCL == nil {
		n := DefaultStampSCL
		sf.StampSCL = &n
	}
	if a.SPF.Action == "" {
		a.SPF.Action = DefaultSPFAction
	}
	ruleDefaults(a.TransportRules)
	af := &a.AttachmentFilter
	if af.Enabled == nil {
		on := true
		af.Enabled = &on
	}
	if af.Action == "" {
		af.Action = DefaultAttachmentAction
	}
	if a.Antivirus.Action == "" {
		a.Antivirus.Action = DefaultAntivirusAction
	}
}

// routingGroupDefaults completes routing groups and their connectors: names spelled as
// declared, the master and the local bridgeheads when absent.
func (s *Scenario) routingGroupDefaults(canon func(string) string) {
	if s.Org.Routing == "" {
		s.Org.Routing = RoutingSites
	}
	groups := map[string]*RoutingGroup{}
	for i := range s.Org.RoutingGroups {
		g := &s.Org.RoutingGroups[i]
		groups[strings.ToLower(g.Name)] = g
		for j, n := range g.Servers {
			g.Servers[j] = canon(n)
		}
		if g.Master == "" {
			for _, n := range g.Servers {
				if sv, ok := s.Server(n); ok && sv.Role == RoleHub {
					g.Master = sv.Name
					break
				}
			}
		}
		g.Master = canon(g.Master)
	}
	sites := map[string]string{}
	for _, st := range s.Org.Sites {
		sites[strings.ToLower(st.Name)] = st.Name
	}
	for i := range s.Org.RoutingGroupConnectors {
		c := &s.Org.RoutingGroupConnectors[i]
		if n, ok := sites[strings.ToLower(c.From)]; ok {
			c.From = n
		}
		if n, ok := sites[strings.ToLower(c.To)]; ok {
			c.To = n
		}
		if g, ok := groups[strings.ToLower(c.From)]; ok {
			c.From = g.Name
			if len(c.LocalBridgeheads) == 0 {
				for _, n := range g.Servers {
					if sv, ok := s.Server(n); ok && sv.Role == RoleHub {
						c.LocalBridgeheads = append(c.LocalBridgeheads, sv.Name)
					}
				}
			}
		}
		if g, ok := groups[strings.ToLower(c.To)]; ok {
			c.To = g.Name
		}
		for j, n := range c.LocalBridgeheads {
			c.LocalBridgeheads[j] = canon(n)
		}
		for j, n := range c.RemoteBridgeheads {
			c.RemoteBridgeheads[j] = canon(n)
		}
		if c.Cost == 0 {
			c.Cost = DefaultConnectorCost
		}
		if c.AddressSpace == "" {
			c.AddressSpace = "*"
		}
	}
}
