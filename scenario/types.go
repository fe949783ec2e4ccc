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
	// Timeline is what happens to the world while `mailflow repro` runs, in order, on
	// the in-process target's fake clock: servers going down and up, the clock
	// stepping, DNS and fake hosts changing, messages sent between them.
	Timeline []Step `yaml:"timeline"`
}

// Org is the Exchange-style organisation.
type Org struct {
	AcceptedDomains []AcceptedDomain `yaml:"accepted_domains"`
	// Routing is how the Hubs route between groups of servers: RoutingSites (the
	// default) by AD sites and site links, RoutingGroups by Exchange 2003 routing
	// groups and routing group connectors, with link state (ROUTE-018 to ROUTE-022).
	Routing RoutingMode `yaml:"routing"`
	Sites   []Site      `yaml:"sites"`
	// RoutingGroups and RoutingGroupConnectors describe an Exchange 2000/2003
	// organisation (org.routing: routing-groups); sites may stay beside them for the
	// Exchange 2007 servers of an organisation in coexistence (ROUTE-022).
	RoutingGroups          []RoutingGroup          `yaml:"routing_groups"`
	RoutingGroupConnectors []RoutingGroupConnector `yaml:"routing_group_connectors"`
	SiteLinks              []SiteLink              `yaml:"site_links"`
	Servers                []Server                `yaml:"servers"`
	SendConnectors         []SendConnector         `yaml:"send_connectors"`
	ReceiveConnectors      []ReceiveConnector      `yaml:"receive_connectors"`
	Recipients             []Recipient             `yaml:"recipients"`
	// TransportRules are the organisation's rules, which every Hub applies when it
	// categorizes a message (FILTER-011, FILTER-012); an Edge's own are in its agents.
	TransportRules []TransportRule `yaml:"transport_rules"`
}

// TransportRule is one transport rule (New-TransportRule): when every condition
// given holds, its actions are applied; rules apply in priority order.
type TransportRule struct {
	Name string `yaml:"name"`
	// Priority orders a server's rules, 0 first; default: the rule's place in its
	// list. No two rules of a list share one.
	Priority *int           `yaml:"priority"`
	When     RuleConditions `yaml:"when"`
	Then     RuleActions    `yaml:"then"`
}

// RuleConditions are a rule's predicates; any value of a list is enough, and case is
// ignored.
type RuleConditions struct {
	// From are sender addresses (MAIL FROM).
	From []string `yaml:"from"`
	// SentTo are recipient addresses, any of the message's.
	SentTo []string `yaml:"sent_to"`
	// RecipientDomainIs are domains of any recipient.
	RecipientDomainIs []string `yaml:"recipient_domain_is"`
	// SubjectOrBodyContains are words of the subject or the body.
	SubjectOrBodyContains []string `yaml:"subject_or_body_contains"`
	// HeaderContains is a header field present, containing one of its words if given.
	HeaderContains *RuleHeader `yaml:"header_contains"`
	// AttachmentNameMatches are file name patterns ("*.exe").
	AttachmentNameMatches []string `yaml:"attachment_name_matches"`
	// SCLAtLeast holds for a message whose SCL is at least this (0-9).
	SCLAtLeast *int `yaml:"scl_at_least"`
}

// RuleHeader names a header field and words of its value.
type RuleHeader struct {
	Name  string   `yaml:"name"`
	Words []string `yaml:"words"`
}

// RuleActions are what a matching rule does (FILTER-011).
type RuleActions struct {
	// Reject refuses the message: on a Hub an NDR to the sender, on an Edge an SMTP
	// refusal at end-of-data that ends the session.
	Reject *RuleReject `yaml:"reject"`
	// PrependSubject is put at the start of the Subject: field.
	PrependSubject string `yaml:"prepend_subject"`
	// SetHeader sets a header field.
	SetHeader *RuleSetHeader `yaml:"set_header"`
	// RedirectTo replace the message's recipients.
	RedirectTo []string `yaml:"redirect_to"`
	// BlindCopyTo are added as recipients, named in no header.
	BlindCopyTo []string `yaml:"blind_copy_to"`
	// Delete drops the message: no delivery, no DSN.
	Delete bool `yaml:"delete"`
}

// RuleReject is a rule's refusal.
type RuleReject struct {
	// Status is the reply code and enhanced code ("550 5.7.1", or "5.7.901" for 550
	// with it). An organisation rule's enhanced code is 5.7.1 or 5.7.900 to 5.7.999,
	// as an NDR from Exchange's rules; an Edge rule's is any 4yz or 5yz.
	Status string `yaml:"status"`
	// Text is the explanation in the NDR or the reply.
	Text string `yaml:"text"`
}

// RuleSetHeader is a header field and its value.
type RuleSetHeader struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
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

// RoutingMode says what the Hubs route by.
type RoutingMode string

const (
	RoutingSites  RoutingMode = "sites"
	RoutingGroups RoutingMode = "routing-groups"
)

// RoutingGroup is an Exchange 2003 routing group: servers that deliver to each other
// directly (ROUTE-018). Its master keeps the group's link-state table and passes
// changes to its members and to the other groups' masters (ROUTE-020).
type RoutingGroup struct {
	Name    string   `yaml:"name"`
	Servers []string `yaml:"servers"`
	// Master is the routing group master, a Hub of the group. Default: the group's
	// first Hub.
	Master string `yaml:"master"`
}

// RoutingGroupConnector carries mail one way, from one routing group to another,
// through its bridgeheads: a local bridgehead of From hands the message to a remote
// bridgehead in To (ROUTE-019).
type RoutingGroupConnector struct {
	Name string `yaml:"name"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Cost is the connector's routing cost (Exchange: 1 to 100). Default 1.
	Cost int `yaml:"cost"`
	// LocalBridgeheads are the Hubs of From that send over the connector. Default:
	// every Hub of From.
	LocalBridgeheads []string `yaml:"local_bridgeheads"`
	// RemoteBridgeheads are the Hubs of To that receive, in fail-over order.
	RemoteBridgeheads []string `yaml:"remote_bridgeheads"`
	// AddressSpace is what the connector carries; a routing group connector carries
	// every address of the organisation, "*". Default "*".
	AddressSpace string `yaml:"address_space"`
	// MaxMessageSize restricts the connector (its delivery restrictions): a larger
	// message is refused with 5.3.4 rather than sent over it (0: no limit).
	MaxMessageSize int `yaml:"max_message_size"`
}

// Role is a server role.
type Role string

const (
	RoleEdge    Role = "edge"
	RoleHub     Role = "hub"
	RoleMailbox Role = "mailbox"
	// RoleClientAccess proxies IMAP logins to each user's Mailbox server (MBX-011).
	RoleClientAccess Role = "client_access"
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
	// SuppressStateChanges keeps the server from marking a routing group connector
	// down when its bridgeheads fail (the SuppressStateChanges registry value of
	// Exchange 2003, ROUTE-021): mail waits at the bridgehead instead of being
	// routed around the connector.
	SuppressStateChanges bool `yaml:"suppress_state_changes"`
	// Agents are the Edge's anti-spam agents, which act at the SMTP events in the
	// fixed order of FILTER-018. Left out, they are Exchange's Edge defaults: enabled,
	// with no provider, list or blocked sender, so they act on nothing.
	Agents Agents `yaml:"agents"`
}

// Agents configures the agents of one Edge server (Exchange's per-server anti-spam
// configuration: Set-IPBlockListConfig, Set-SenderFilterConfig, ...).
type Agents struct {
	ConnectionFilter ConnectionFilter `yaml:"connection_filter"`
	SenderFilter     SenderFilter     `yaml:"sender_filter"`
	SPF              SPF              `yaml:"spf"`
	AttachmentFilter AttachmentFilter `yaml:"attachment_filter"`
	Antivirus        Antivirus        `yaml:"antivirus"`
	ContentFilter    ContentFilter    `yaml:"content_filter"`
	// TransportRules are the Edge's own rules (the Edge Rules agent), known to this
	// Edge alone (FILTER-012).
	TransportRules []TransportRule `yaml:"transport_rules"`
	// AddressRewriting are the Edge's address rewriting entries, first match first
	// (FILTER-017).
	AddressRewriting []AddressRewrite `yaml:"address_rewriting"`
}

// AddressRewrite is one address rewriting entry (New-AddressRewriteEntry).
type AddressRewrite struct {
	// Internal is an address, a domain ("sales.contoso.test" or
	// "*@sales.contoso.test") or "*.domain" for a domain and its sub-domains.
	Internal string `yaml:"internal"`
	// External is an address when Internal is one, a domain otherwise.
	External string `yaml:"external"`
	// Bidirectional rewrites inbound mail to the external form back to the internal
	// one too; the default is outbound only. Not for "*.domain".
	Bidirectional bool `yaml:"bidirectional"`
}

// AttachmentFilter is the Attachment Filtering agent (FILTER-016): attachments by
// file name or content type, anywhere in the message's MIME tree.
type AttachmentFilter struct {
	// Enabled defaults to true on an Edge.
	Enabled *bool `yaml:"enabled"`
	// BlockedNames are file name patterns ("*.exe"), matched whatever the case.
	BlockedNames []string `yaml:"blocked_names"`
	// BlockedTypes are media types ("application/x-msdownload").
	BlockedTypes []string `yaml:"blocked_types"`
	// Action is reject (550 5.7.1 at end-of-data, the default), strip (delivered
	// without the attachment, with a notice part naming it) or silent_delete (taken,
	// then neither delivered nor bounced).
	Action string `yaml:"action"`
	// RejectResponse replaces the refusal's text.
	RejectResponse string `yaml:"reject_response"`
}

// Antivirus is the Malware Agent (FILTER-009, FILTER-010): every message scanned by
// ClamAV's daemon, which the world provides (in-process: a clamd the topology starts).
type Antivirus struct {
	// Enabled is false unless set: an Edge without it scans nothing and needs no clamd.
	Enabled bool `yaml:"enabled"`
	// Action is what an infected message gets: delete (taken, then neither delivered
	// nor bounced: Exchange's default), reject (554 5.7.1 at end-of-data) or strip
	// (delivered with each infected part replaced by a notice).
	Action string `yaml:"action"`
	// RejectResponse replaces the refusal's text.
	RejectResponse string `yaml:"reject_response"`
	// NotifySender tells the envelope sender of a message deleted or stripped after
	// acceptance what became of it (Exchange's sender notifications). Off unless set:
	// the sender of malware is likely forged (FILTER-010).
	NotifySender bool `yaml:"notify_sender"`
}

// Antivirus actions.
const (
	AntivirusDelete = "delete"
	AntivirusReject = "reject"
	AntivirusStrip  = "strip"
)

// AntivirusEnabled says whether any Edge of the scenario scans for malware, and so
// needs a clamd.
func (s *Scenario) AntivirusEnabled() bool {
	for _, sv := range s.Org.Servers {
		if sv.Role == RoleEdge && sv.Agents.Antivirus.Enabled {
			return true
		}
	}
	return false
}

// ContentFilter is the Content Filter agent (FILTER-013): SpamAssassin's spamd scores
// each message from an anonymous Internet session, the score becomes an SCL (0-9),
// and the highest threshold it reaches acts. A threshold left out is not enabled.
type ContentFilter struct {
	// Enabled is false unless set.
	Enabled bool `yaml:"enabled"`
	// Spamd is the daemon's host:port. Left out, the filter asks the spamd the world
	// provides, as the Malware Agent does its clamd (in-process: the test process's;
	// in containers: one beside the servers; `mailflow server --spamd`).
	Spamd string `yaml:"spamd"`
	// SCLDeleteThreshold: at or above, the message is taken and deleted (no DSN).
	SCLDeleteThreshold *int `yaml:"scl_delete_threshold"`
	// SCLRejectThreshold: at or above, end-of-data gets 550 5.7.1.
	SCLRejectThreshold *int `yaml:"scl_reject_threshold"`
	// SCLQuarantineThreshold: at or above, the message goes to QuarantineMailbox
	// alone.
	SCLQuarantineThreshold *int   `yaml:"scl_quarantine_threshold"`
	QuarantineMailbox      string `yaml:"quarantine_mailbox"`
	// RejectResponse replaces the refusal's text ("Message rejected due to content
	// restrictions").
	RejectResponse string `yaml:"reject_response"`
}

// NeedsWorldSpamd says whether an Edge of the scenario filters content with no spamd
// of its own named, and so asks the world's.
func (s *Scenario) NeedsWorldSpamd() bool {
	for _, sv := range s.Org.Servers {
		if cf := sv.Agents.ContentFilter; sv.Role == RoleEdge && cf.Enabled && cf.Spamd == "" {
			return true
		}
	}
	return false
}

func (cf ContentFilter) configured() bool {
	return cf.Enabled || cf.Spamd != "" || cf.SCLDeleteThreshold != nil || cf.SCLRejectThreshold != nil ||
		cf.SCLQuarantineThreshold != nil || cf.QuarantineMailbox != "" || cf.RejectResponse != ""
}

// Attachment filter actions.
const (
	AttachmentReject       = "reject"
	AttachmentStrip        = "strip"
	AttachmentSilentDelete = "silent_delete"
)

// SPF is the sender authentication agent (Exchange's Sender ID agent), here SPF on the
// MAIL FROM identity (FILTER-015).
type SPF struct {
	// Enabled is false unless set: the other clauses' messages then arrive as sent,
	// without a Received-SPF field.
	Enabled bool `yaml:"enabled"`
	// Action is what a fail gets: stamp (a Received-SPF field, the default, as
	// Exchange's SpoofedDomainAction StampStatus) or reject (550 5.7.23 at MAIL).
	Action string `yaml:"action"`
}

// SPF actions.
const (
	SPFStamp  = "stamp"
	SPFReject = "reject"
)

// ConnectionFilter is the Connection Filtering agent (FILTER-001 ... FILTER-008): IP
// Allow and Block lists and DNS block list providers, checked for the client's
// address at connect and acted on at RCPT.
type ConnectionFilter struct {
	// Enabled defaults to true on an Edge.
	Enabled *bool `yaml:"enabled"`
	// IPAllowList clients (IPs or CIDR ranges) bypass the block list and providers.
	IPAllowList []string `yaml:"ip_allow_list"`
	// IPBlockList clients (IPs or CIDR ranges) are refused at RCPT.
	IPBlockList []string `yaml:"ip_block_list"`
	// Providers are the DNS block lists, queried in order.
	Providers []BlockListProvider `yaml:"block_list_providers"`
	// BypassedRecipients still get 250 from a listed client: addresses, or a bare
	// local part ("postmaster") for that local part at every domain and alone.
	BypassedRecipients []string `yaml:"bypassed_recipients"`
	// LookupTimeout bounds each provider's query; a provider that has not answered
	// by then counts as not listing the client (FILTER-008).
	LookupTimeout Duration `yaml:"lookup_timeout"`
}

// BlockListProvider is one DNS block list (Add-IPBlockListProvider).
type BlockListProvider struct {
	// Name is what the rejection names; default: the zone.
	Name string `yaml:"name"`
	Zone string `yaml:"zone"`
	// IPAddressesMatch limits a listing to these return codes; BitmaskMatch to codes
	// that share a bit with this one (127.0.0.4 matches 127.0.0.4 and 127.0.0.6). With
	// neither, any A record is a listing (AnyMatch).
	IPAddressesMatch []string `yaml:"ip_addresses_match"`
	BitmaskMatch     string   `yaml:"bitmask_match"`
	// RejectionResponse replaces the provider's TXT reason in the refusal.
	RejectionResponse string `yaml:"rejection_response"`
}

// SenderFilter is the Sender Filter agent (FILTER-014).
type SenderFilter struct {
	// Enabled defaults to true on an Edge.
	Enabled *bool `yaml:"enabled"`
	// BlockedSenders are addresses.
	BlockedSenders []string `yaml:"blocked_senders"`
	// BlockedDomains are domains, "*.domain" for the domain and its sub-domains.
	BlockedDomains []string `yaml:"blocked_domains"`
	// BlankSenderBlocking refuses MAIL FROM:<> too (BlankSenderBlockingEnabled).
	BlankSenderBlocking bool `yaml:"blank_sender_blocking"`
	// Action is reject (554 5.1.0 at MAIL, the default) or stamp: the message is
	// taken and carries the stamp and an SCL of at least StampSCL.
	Action string `yaml:"action"`
	// StampSCL is the spam confidence level a stamped message gets at least.
	StampSCL *int `yaml:"stamp_scl"`
}

// Sender filter actions.
const (
	SenderFilterReject = "reject"
	SenderFilterStamp  = "stamp"
)

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
	// ExternallySecured (Exchange's AuthMechanism ExternalAuthoritative) makes every
	// session from the connector's remote IP ranges one of the organisation's own
	// servers: with the exchange_servers permission it holds all of ExchangeServers'
	// rights without AUTH, ms-Exch-Bypass-Anti-Spam among them (FILTER-007).
	ExternallySecured bool `yaml:"externally_secured"`
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
	// Quota is the mailbox's size limit in bytes (Exchange's ProhibitSendReceiveQuota):
	// a message that would take the mailbox over it is refused 5.2.2 (MBX-009); 0 is
	// no limit.
	Quota int64 `yaml:"quota"`
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
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	Via  string   `yaml:"via"`
	// Submit is how the client hands the message over: by SMTP to via (the default),
	// or "outbox": the sender's mail client logs in over IMAP at via (the sender's
	// Mailbox server, or a Client Access server) and places the message in the
	// Outbox, which the Mailbox server hands to a Hub of its site and then files in
	// Sent Items (store submission, MBX-006).
	Submit string `yaml:"submit,omitempty"`
	// Idle are recipients whose mail client is logged in at their Mailbox server with
	// INBOX selected, in IDLE, from before the message is sent to the end of the run:
	// the trace's NOTIFY events show who was told of the delivery (MBX-012).
	Idle []string `yaml:"idle,omitempty"`
	// Client is the loopback address the message is sent from (default: the one the
	// system picks), so a scenario can show what a server does for a listed or
	// blocked client (FILTER-006).
	Client string `yaml:"client"`
	// Size makes the body a generated text of exactly that many octets (ROUTE-016's
	// link limits, FILTER-016's size limits); Body gives it instead.
	Size int    `yaml:"size,omitempty"`
	Body string `yaml:"body,omitempty"`
	// Attachments make the message multipart/mixed: the body, then each attachment.
	Attachments []Attachment `yaml:"attachments,omitempty"`
	Expect      Expect       `yaml:"expect"`
}

// Attachment is one attached file: its bytes written out (Content) or generated
// (Size octets).
type Attachment struct {
	Name        string `yaml:"name"`
	ContentType string `yaml:"content_type,omitempty"`
	Content     string `yaml:"content,omitempty"`
	Size        int    `yaml:"size,omitempty"`
}

// Step is one step of the timeline; exactly one of its keys is given.
type Step struct {
	// Down stops a server of the organisation answering (its spool stays); Up starts
	// it again on that spool.
	Down string `yaml:"down,omitempty"`
	Up   string `yaml:"up,omitempty"`
	// LinkDown cuts the network path of a routing group connector: its local
	// bridgeheads can no longer reach its remote bridgeheads, though every server
	// stays up (Exchange 2003, ROUTE-020); LinkUp mends it.
	LinkDown string `yaml:"link_down,omitempty"`
	LinkUp   string `yaml:"link_up,omitempty"`
	// Advance steps the fake clock, timer by timer, so queues retry on the way.
	Advance Duration `yaml:"advance,omitempty"`
	// Send submits message N of messages: (1 for the first), as repro numbers them.
	// Messages no step sends are sent before the timeline starts.
	Send int `yaml:"send,omitempty"`
	// DNS changes the fake DNS.
	DNS *DNSStep `yaml:"dns,omitempty"`
	// Host changes what a fake Internet host does from its next command on.
	Host *HostStep `yaml:"host,omitempty"`
}

// StepKeys are the keys of a Step, one of which a step gives.
var StepKeys = []string{"down", "up", "link_down", "link_up", "advance", "send", "dns", "host"}

// DNSStep adds records to the fake DNS (zone-file lines, as internet.dns has them)
// and removes them ("NAME" for every record at a name, "NAME TYPE" for one type).
type DNSStep struct {
	Set    []string `yaml:"set,omitempty"`
	Remove []string `yaml:"remove,omitempty"`
}

// HostStep gives a fake Internet host a new behaviour.
type HostStep struct {
	Name      string    `yaml:"name"`
	Behaviour Behaviour `yaml:"behaviour"`
}

type Expect struct {
	// Delivered are "MAILBOX-SERVER/local-part": stored by that server for that
	// recipient.
	Delivered []string `yaml:"delivered"`
	// Rejected is a reply the submission was refused with, at a RCPT or for the whole
	// message: a basic code ("550"), an enhanced code ("5.1.1") or both ("550 5.1.1");
	// see ReplyCode.
	Rejected string `yaml:"rejected"`
	// Path is the hop path of a recipient, as `mailflow repro` prints it
	// ("EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER:bob"); a list gives several,
	// each of which some recipient must have taken.
	Path Paths `yaml:"path"`
}

// Paths is one hop path (a string) or a list of them.
type Paths []string

// Duration is a time.Duration written as "10m" in YAML.
type Duration time.Duration
