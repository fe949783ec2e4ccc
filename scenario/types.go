package scenario

import "time"

// Scenario is one whole world: the organisation under test, the Internet around it
// and, optionally, messages to send through it.
type Scenario struct {
	// File is the path the scenario was read from; errors name it.
	File     string    `yaml:"-"`
	Org      Org       `yaml:"org"`
	Internet Internet  `yaml:"internet"`
	Messages []Message `yaml:"messages"`
}

// Org is the Exchange-style organisation.
type Org struct {
	AcceptedDomains   []AcceptedDomain   `yaml:"accepted_domains"`
	Sites             []Site             `yaml:"sites"`
	SiteLinks         []SiteLink         `yaml:"site_links"`
	Servers           []Server           `yaml:"servers"`
	SendConnectors    []SendConnector    `yaml:"send_connectors"`
	ReceiveConnectors []ReceiveConnector `yaml:"receive_connectors"`
	Recipients        []Recipient        `yaml:"recipients"`
}

// DomainType is the accepted-domain type of Exchange.
type DomainType string

const (
	Authoritative DomainType = "authoritative"
	InternalRelay DomainType = "internal-relay"
	ExternalRelay DomainType = "external-relay"
)

type AcceptedDomain struct {
	// Domain is a domain name, or "*.name" to include subdomains.
	Domain string     `yaml:"domain"`
	Type   DomainType `yaml:"type"`
	// Default marks the default accepted domain (postmaster address of DSNs).
	Default bool `yaml:"default"`
}

type Site struct {
	Name string `yaml:"name"`
	Hub  bool   `yaml:"hub"`
}

type SiteLink struct {
	Sites []string `yaml:"sites"`
	Cost  int      `yaml:"cost"`
	// ExchangeCost, when non-zero, replaces Cost for routing.
	ExchangeCost int `yaml:"exchange_cost"`
	// MaxMessageSize in bytes; a larger message is not relayed across the link (0: no limit).
	MaxMessageSize int `yaml:"max_message_size"`
}

// Role is a server role.
type Role string

const (
	RoleEdge    Role = "edge"
	RoleHub     Role = "hub"
	RoleMailbox Role = "mailbox"
)

type Server struct {
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
	Site string `yaml:"site"`
	// FQDN is the name the server uses in EHLO, Received and Reporting-MTA.
	// Default: lower-case name + "." + first authoritative domain.
	FQDN string `yaml:"fqdn"`
	// RecipientFiltering enables recipient lookup at RCPT (Edge). Default true on edge.
	RecipientFiltering *bool `yaml:"recipient_filtering"`
	// RecipientBlockList lists addresses refused with 550 5.1.1 (ACCEPT-003).
	RecipientBlockList []string `yaml:"recipient_block_list"`
	// MaxHopCount is the Received-header limit (TRACE-004). Default 60.
	MaxHopCount int `yaml:"max_hop_count"`
	// SpoolLimit is back pressure, in octets: while the server's queue holds this many
	// octets of messages, end-of-data gets 452 4.3.1 until deliveries make room again
	// (Exchange's back pressure on the queue database's disk, SEC-010). 0: no limit.
	SpoolLimit int64 `yaml:"spool_limit"`
	// RetryInterval is the wait between delivery attempts to a next hop once the
	// transient retries are used up (OutboundConnectionFailureRetryInterval).
	RetryInterval Duration `yaml:"retry_interval"`
	// TransientRetryInterval and TransientRetryCount are the first retries after a
	// failed attempt (TransientFailureRetryInterval and Count).
	TransientRetryInterval Duration `yaml:"transient_retry_interval"`
	TransientRetryCount    *int     `yaml:"transient_retry_count"`
	// DelayNotification is how long after arrival a still-undelivered message earns
	// its sender a delay DSN (DelayNotificationTimeout, QUEUE-006).
	DelayNotification Duration `yaml:"delay_notification"`
	// MessageExpiration is how long after arrival an undelivered message is given up
	// with a failed DSN (MessageExpirationTimeout, QUEUE-005).
	MessageExpiration Duration `yaml:"message_expiration"`
	// PoisonThreshold is how many attempts that died with the server make a message
	// poison (QUEUE-011); 0 never does. Default 2.
	PoisonThreshold *int `yaml:"poison_threshold"`
	// ShadowRedundancy keeps a shadow copy of what a Hub relays to another transport
	// server until that server has delivered it onward, and resubmits it when that
	// server fails first (ShadowRedundancyEnabled, QUEUE-012). On an Edge it only
	// answers the Hubs' queries about what it holds. Default true on Hubs and Edges.
	ShadowRedundancy *bool `yaml:"shadow_redundancy"`
	// ShadowHeartbeatTimeout is how often a Hub asks a server it relayed to about its
	// shadow copies (ShadowHeartbeatTimeoutInterval); ShadowHeartbeatRetryCount is how
	// many unanswered heartbeats in a row make that server failed, and its shadows
	// resubmitted (ShadowHeartbeatRetryCount).
	ShadowHeartbeatTimeout    Duration `yaml:"shadow_heartbeat_timeout"`
	ShadowHeartbeatRetryCount *int     `yaml:"shadow_heartbeat_retry_count"`
	// ShadowMessageAutoDiscard is how long a shadow copy is kept at most, confirmed or
	// not (ShadowMessageAutoDiscardInterval).
	ShadowMessageAutoDiscard Duration `yaml:"shadow_message_auto_discard"`
}

// Permission is an Exchange permission group of a receive connector.
type Permission string

const (
	PermAnonymous       Permission = "anonymous"        // AnonymousUsers
	PermPartners        Permission = "partners"         // Partners
	PermExchangeUsers   Permission = "exchange_users"   // ExchangeUsers: authenticated users
	PermExchangeServers Permission = "exchange_servers" // ExchangeServers
)

type ReceiveConnector struct {
	// Name defaults to "SERVER\Default" style names derived from the server and index.
	Name   string `yaml:"name"`
	Server string `yaml:"server"`
	// Bind is "[addr]:port"; the in-process target replaces the address with the server's
	// loopback address and the port with its SMTP port.
	Bind        string       `yaml:"bind"`
	Permissions []Permission `yaml:"permissions"`
	// RemoteIPRanges limits which clients the connector serves (CIDR or single IP).
	// Empty means every client.
	RemoteIPRanges []string `yaml:"remote_ip_ranges"`
	// AcceptAnyRecipient is the explicit ms-Exch-SMTP-Accept-Any-Recipient grant
	// (IP-scoped relay connector, RELAY-008).
	AcceptAnyRecipient bool `yaml:"accept_any_recipient"`
	// TLS offers STARTTLS with a certificate from the test CA.
	TLS bool `yaml:"tls"`
	// AuthRequiresTLS hides AUTH until STARTTLS (BasicAuthRequireTLS), so no password
	// crosses in the clear (SMTP-021). Default: true on a connector that offers TLS,
	// false on one that does not (where AUTH could not be offered at all otherwise).
	AuthRequiresTLS *bool `yaml:"auth_requires_tls"`
	MaxRecipients   int   `yaml:"max_recipients"`
	MaxMessageSize  int   `yaml:"max_message_size"`
	// InactivityTimeout drops a client that sends nothing for this long, in the middle
	// of DATA too (ConnectionInactivityTimeout, SEC-005). Default 5m.
	InactivityTimeout Duration `yaml:"inactivity_timeout"`
	// TarpitInterval delays the refusal of an unknown recipient to anonymous clients
	// by this long (TarpitInterval, ACCEPT-004), slowing directory harvesting. Exchange
	// defaults to 5s; here 0 (off) unless set, so that other clauses' specs on real
	// time do not wait for it.
	TarpitInterval Duration `yaml:"tarpit_interval"`
}

type SendConnector struct {
	Name string `yaml:"name"`
	// AddressSpaces are domains ("fabrikam.test"), wildcards ("*.contoso.test") or "*".
	AddressSpaces []string `yaml:"address_spaces"`
	// Source names the servers that may use this connector.
	Source []string `yaml:"source"`
	Cost   int      `yaml:"cost"`
	// SmartHosts, when set, receive all mail of the connector: FQDN, "host:port",
	// IP literal or "[host]" (no MX lookup).
	SmartHosts []string `yaml:"smart_hosts"`
	// TLS requires STARTTLS to the smart host.
	TLS bool `yaml:"tls"`
	// Auth is Basic authentication (AUTH PLAIN) to the smart host.
	Auth           *Credentials `yaml:"auth"`
	Enabled        *bool        `yaml:"enabled"`
	MaxMessageSize int          `yaml:"max_message_size"`
	// Scoped limits the connector to routing servers in its source servers' sites
	// (Exchange's IsScopedConnector, ROUTE-011).
	Scoped bool `yaml:"scoped"`
}

type Credentials struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// RecipientType is the kind of directory object.
type RecipientType string

const (
	RecipientMailbox RecipientType = "mailbox"
	RecipientGroup   RecipientType = "group"
	RecipientContact RecipientType = "contact"
)

type Recipient struct {
	Mail    string        `yaml:"mail"`
	Type    RecipientType `yaml:"type"` // default mailbox
	Proxies []string      `yaml:"proxies"`
	// Mailbox names the mailbox server holding the mailbox (homeMDB's owner).
	Mailbox string `yaml:"mailbox"`
	// Members of a group: addresses of other recipients.
	Members []string `yaml:"members"`
	// External is a contact's target address.
	External string `yaml:"external"`
	// Password lets the recipient authenticate (SMTP AUTH) as Mail.
	Password string `yaml:"password"`
	// ForwardTo redirects a mailbox's mail to another recipient of the organisation
	// (altRecipient in the directory): the REDIRECT event; two mailboxes forwarding to
	// each other are a broken recipient loop (CAT-005).
	ForwardTo string `yaml:"forward_to"`
	// Invalid writes the object to the directory without the attribute delivery needs
	// (a mailbox's homeMDB, a contact's targetAddress): an invalid object (CAT-005).
	Invalid bool `yaml:"invalid"`
}

type Internet struct {
	// DNS holds zone-file records ("fabrikam.test. MX 10 mx1.fabrikam.test.").
	DNS []string `yaml:"dns"`
	// DNSFailures makes names fail: servfail | nxdomain | timeout | truncate.
	DNSFailures []DNSFailure `yaml:"dns_failures"`
	Hosts       []Host       `yaml:"hosts"`
	DNSBL       []DNSBLZone  `yaml:"dnsbl"`
}

type DNSFailure struct {
	Name string `yaml:"name"`
	Mode string `yaml:"mode"`
}

// Host is a fake Internet MTA.
type Host struct {
	Name string `yaml:"name"`
	// Address is the host's loopback address; default: its A record in DNS.
	Address   string    `yaml:"address"`
	Behaviour Behaviour `yaml:"behaviour"`
	// Recipients overrides the behaviour per recipient address.
	Recipients map[string]Behaviour `yaml:"recipients"`
	TLS        bool                 `yaml:"tls"`
	// Auth, when set, is required (AUTH PLAIN) before MAIL.
	Auth *Credentials `yaml:"auth"`
	// MaxRecipients answers 452 4.5.3 to every RCPT past this many in a transaction.
	MaxRecipients int `yaml:"max_recipients"`
	// Extensions are EHLO keywords the host offers beyond the usual ones: DSN,
	// SMTPUTF8, BINARYMIME, REQUIRETLS, RRVS, DELIVERBY, MT-PRIORITY.
	Extensions []string `yaml:"extensions"`
}

// HostExtensions are the keywords Host.Extensions may name.
var HostExtensions = []string{"DSN", "SMTPUTF8", "BINARYMIME", "REQUIRETLS", "RRVS", "DELIVERBY", "MT-PRIORITY"}

// Behaviour is what a fake host does. In YAML it is either a bare action
// ("accept") or a mapping with the details.
type Behaviour struct {
	Action string `yaml:"action"` // accept | defer | reject | drop | stall
	// Stage is where the behaviour applies: greeting | mail | rcpt | data (default:
	// rcpt for per-recipient behaviours, data otherwise).
	Stage    string   `yaml:"stage"`
	Code     int      `yaml:"code"`
	Enhanced string   `yaml:"enhanced"`
	Text     string   `yaml:"text"`
	Duration Duration `yaml:"duration"` // stall
	// MidData makes a drop happen while the client is still sending data.
	MidData bool `yaml:"mid_data"`
}

type DNSBLZone struct {
	Zone   string   `yaml:"zone"`
	Listed []string `yaml:"listed"`
}

// Message is a message `mailflow repro` sends.
type Message struct {
	From   string   `yaml:"from"`
	To     []string `yaml:"to"`
	Via    string   `yaml:"via"`
	Expect Expect   `yaml:"expect"`
}

type Expect struct {
	Delivered []string `yaml:"delivered"`
	Rejected  string   `yaml:"rejected"`
	// Path is the hop path of each recipient, as `mailflow repro` prints it
	// ("EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER:bob").
	Path string `yaml:"path"`
}

// Duration is a time.Duration written as "10m" in YAML.
type Duration time.Duration
