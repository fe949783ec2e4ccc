package transport

import (
	"fmt"
	"net/netip"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/antivirus"
	"github.com/mailflow/mailflow/reference/agents/attachfilter"
	"github.com/mailflow/mailflow/reference/agents/connfilter"
	"github.com/mailflow/mailflow/reference/agents/contentfilter"
	"github.com/mailflow/mailflow/reference/agents/edgerules"
	"github.com/mailflow/mailflow/reference/agents/rewrite"
	"github.com/mailflow/mailflow/reference/agents/senderfilter"
	"github.com/mailflow/mailflow/reference/agents/senderid"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/reference/rules"
	"github.com/mailflow/mailflow/reference/spamc"
	"github.com/mailflow/mailflow/scenario"
)

// agentPipeline builds an Edge's agents from its scenario settings (FILTER-018); a Hub
// runs none. Nil when no agent is enabled.
func (e *Server) agentPipeline() (*agents.Pipeline, error) {
	sv := e.cfg.Server
	if e.cfg.Router != nil || sv.Role != scenario.RoleEdge {
		return nil, nil
	}
	var as []agents.Agent
	cf := sv.Agents.ConnectionFilter
	if cf.Enabled == nil || *cf.Enabled {
		f, err := e.connectionFilter(cf)
		if err != nil {
			return nil, err
		}
		if f != nil {
			as = append(as, f)
		}
	}
	sf := sv.Agents.SenderFilter
	if (sf.Enabled == nil || *sf.Enabled) && (len(sf.BlockedSenders)+len(sf.BlockedDomains) > 0 || sf.BlankSenderBlocking) {
		opts := []senderfilter.Option{senderfilter.WithBlockedSenders(sf.BlockedSenders...),
			senderfilter.WithBlockedDomains(sf.BlockedDomains...), senderfilter.WithBlankSenderBlocking(sf.BlankSenderBlocking)}
		if sf.Action == scenario.SenderFilterStamp {
			scl := scenario.DefaultStampSCL
			if sf.StampSCL != nil {
				scl = *sf.StampSCL
			}
			opts = append(opts, senderfilter.WithStamp(scl))
		}
		as = append(as, senderfilter.New(opts...))
	}
	if sp := sv.Agents.SPF; sp.Enabled {
		res, ok := e.cfg.Resolver.(senderid.Resolver)
		if !ok {
			return nil, fmt.Errorf("edge %s: spf: the resolver cannot look up TXT, MX and PTR records", sv.Name)
		}
		as = append(as, senderid.New(res, sv.FQDN, senderid.WithReject(sp.Action == scenario.SPFReject)))
	}
	if af := sv.Agents.AttachmentFilter; (af.Enabled == nil || *af.Enabled) && len(af.BlockedNames)+len(af.BlockedTypes) > 0 {
		as = append(as, attachfilter.New(attachfilter.WithBlockedNames(af.BlockedNames...), attachfilter.WithBlockedTypes(af.BlockedTypes...),
			attachfilter.WithAction(attachfilter.Action(af.Action)), attachfilter.WithRejectText(af.RejectResponse)))
	}
	if av := sv.Agents.Antivirus; av.Enabled {
		if e.cfg.Clamd == "" {
			return nil, fmt.Errorf("edge %s: antivirus: no clamd to scan with (the world gives this Edge no ClamAV daemon)", sv.Name)
		}
		opts := []antivirus.Option{antivirus.WithAction(antivirus.Action(av.Action)), antivirus.WithRejectText(av.RejectResponse)}
		if av.NotifySender {
			opts = append(opts, antivirus.WithSenderNotification(e))
		}
		as = append(as, antivirus.New(clamd.New(e.cfg.Clamd), opts...))
	}
	if cf := sv.Agents.ContentFilter; cf.Enabled {
		var opts []contentfilter.Option
		if t := cf.SCLDeleteThreshold; t != nil {
			opts = append(opts, contentfilter.WithDelete(*t))
		}
		if t := cf.SCLRejectThreshold; t != nil {
			opts = append(opts, contentfilter.WithReject(*t, cf.RejectResponse))
		}
		if t := cf.SCLQuarantineThreshold; t != nil {
			opts = append(opts, contentfilter.WithQuarantine(*t, cf.QuarantineMailbox))
		}
		addr := cf.Spamd
		if addr == "" {
			addr = e.cfg.Spamd
		}
		if addr == "" {
			return nil, fmt.Errorf("edge %s: content filter: no spamd to score with (the scenario names none and the world gives this Edge none)", sv.Name)
		}
		as = append(as, contentfilter.New(spamc.New(addr), opts...))
	}
	if len(sv.Agents.TransportRules) > 0 {
		rs, err := rules.FromScenario(sv.Agents.TransportRules)
		if err != nil {
			return nil, fmt.Errorf("edge %s: transport rules: %w", sv.Name, err)
		}
		as = append(as, edgerules.New(rs))
	}
	if len(sv.Agents.AddressRewriting) > 0 {
		var es []rewrite.Entry
		for _, r := range sv.Agents.AddressRewriting {
			es = append(es, rewrite.Entry{Internal: r.Internal, External: r.External, Bidirectional: r.Bidirectional})
		}
		as = append(as, rewrite.New(es...))
	}
	if len(as) == 0 {
		return nil, nil
	}
	return agents.New(sv.Name, as, agents.WithTrace(e.cfg.Trace), agents.WithClock(e.cfg.Clock)), nil
}

// connectionFilter is the Connection Filtering agent, or nil when it has nothing to
// check.
func (e *Server) connectionFilter(cf scenario.ConnectionFilter) (*connfilter.Filter, error) {
	if len(cf.IPAllowList)+len(cf.IPBlockList)+len(cf.Providers) == 0 {
		return nil, nil
	}
	var opts []connfilter.Option
	for _, l := range []struct {
		list []string
		opt  func(...netip.Prefix) connfilter.Option
	}{{cf.IPAllowList, connfilter.WithAllowList}, {cf.IPBlockList, connfilter.WithBlockList}} {
		for _, r := range l.list {
			p, err := parsePrefix(r)
			if err != nil {
				return nil, fmt.Errorf("edge %s: connection filter: %w", e.cfg.Server.Name, err)
			}
			opts = append(opts, l.opt(p))
		}
	}
	for _, p := range cf.Providers {
		pr := connfilter.Provider{Name: p.Name, Zone: p.Zone, Response: p.RejectionResponse}
		if pr.Name == "" {
			pr.Name = p.Zone
		}
		for _, m := range p.IPAddressesMatch {
			a, err := netip.ParseAddr(m)
			if err != nil {
				return nil, fmt.Errorf("edge %s: provider %s: %w", e.cfg.Server.Name, p.Zone, err)
			}
			pr.Match = append(pr.Match, a)
		}
		if p.BitmaskMatch != "" {
			a, err := netip.ParseAddr(p.BitmaskMatch)
			if err != nil {
				return nil, fmt.Errorf("edge %s: provider %s: %w", e.cfg.Server.Name, p.Zone, err)
			}
			pr.Bitmask = a
		}
		opts = append(opts, connfilter.WithProviders(pr))
	}
	opts = append(opts, connfilter.WithBypassedRecipients(cf.BypassedRecipients...), connfilter.WithLookupTimeout(cf.LookupTimeout.D()))
	res, ok := e.cfg.Resolver.(connfilter.Resolver)
	if !ok && len(cf.Providers) > 0 {
		return nil, fmt.Errorf("edge %s: connection filter: the resolver cannot look up A and TXT records for block list providers", e.cfg.Server.Name)
	}
	return connfilter.New(res, opts...), nil
}
