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
	}
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
	}
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
