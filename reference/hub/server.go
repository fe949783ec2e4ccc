package hub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/reference/linkstate"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/rules"
	"github.com/mailflow/mailflow/reference/shadow"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/reference/transport"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Config is what a Hub needs.
type Config struct {
	Scenario *scenario.Scenario
	Server   *scenario.Server
	// Addr is the Hub's own address; PortMap and OutPort as for an Edge.
	Addr    netip.Addr
	PortMap func(port int) int
	OutPort int
	// Peers is the SMTP address ("ip:port") of every server of the organisation.
	Peers map[string]string
	// OrgRanges are the addresses the organisation's servers send from: the Hub's
	// default receive connector grants them relay (as ExchangeServers would).
	OrgRanges []string
	SpoolDir  string
	Directory categorizer.Directory
	// Org is the routing state NewOrg derives from Scenario and Peers, which Hubs
	// started together share; nil derives it for this Hub alone.
	Org *Org
	// LinkTransport carries the link state of a Hub that derives its own Org to the other
	// Hubs of the routing groups (ROUTE-020); nil keeps it in that Org.
	LinkTransport linkstate.Transport
	// DirectoryTTL is how long a directory answer is reused (CAT-002); 0 means 5 min.
	DirectoryTTL time.Duration
	Resolver     smtpout.Resolver
	Trace        trace.Recorder
	Clock        clock.Clock
	ServerTLS    *tls.Config
	ClientTLS    *tls.Config
	Logger       *slog.Logger
	// Seed makes the first choice among equal-preference MXs repeatable (DNS-003); 0
	// keeps it random.
	Seed uint64
	// Gate is transport.Config.Gate: asked before each connection the Hub makes.
	Gate func(addr string) error
}

// DefaultConnector is the receive connector a Hub gets when the scenario gives it none:
// port 25, STARTTLS, relay for the organisation's servers, submission to accepted
// domains for anyone else.
const DefaultConnector = "Default"

// Server is a running Hub Transport server.
type Server struct {
	// Transport is the transport server the Hub runs on, routing with the Hub's Router.
	Transport *transport.Server
	router    *Router
	cat       *categorizer.Categorizer
	cfg       Config
	ready     chan struct{}
	shadow    *shadow.Manager
	rules     *rules.Set // the organisation's transport rules; nil for none
	links     *linkstate.Net
	stop      context.CancelFunc
	done      chan struct{}
}

// Start binds the Hub's receive connectors and starts its queue.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Trace == nil {
		cfg.Trace = trace.NewLog(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := []categorizer.Option{categorizer.WithClock(cfg.Clock)}
	if cfg.DirectoryTTL > 0 {
		opts = append(opts, categorizer.WithTTL(cfg.DirectoryTTL))
	}
	cat := categorizer.New(cfg.Directory, opts...)
	org := cfg.Org
	if org == nil {
		var err error
		var opts []OrgOption
		if cfg.LinkTransport != nil {
			opts = append(opts, WithLinkTransport(cfg.LinkTransport))
		}
		if org, err = NewOrg(cfg.Scenario, cfg.Peers, opts...); err != nil {
			return nil, err
		}
	}
	r, err := org.Router(cfg.Server.Name, cat)
	if err != nil {
		return nil, err
	}
	h := &Server{router: r, cat: cat, cfg: cfg, ready: make(chan struct{})}
	if len(cfg.Scenario.Org.TransportRules) > 0 {
		rs, err := rules.FromScenario(cfg.Scenario.Org.TransportRules)
		if err != nil {
			return nil, fmt.Errorf("hub %s: transport rules: %w", cfg.Server.Name, err)
		}
		h.rules = rules.New(rs)
	}
	// A Hub does no recipient filtering at RCPT: the categorizer answers with an NDR.
	srv := *cfg.Server
	off := false
	srv.RecipientFiltering = &off
	var conns []scenario.ReceiveConnector
	if len(cfg.Scenario.ReceiveConnectorsOf(srv.Name)) == 0 {
		conns = []scenario.ReceiveConnector{{
			Name: DefaultConnector, Server: srv.Name, Bind: ":25", TLS: true,
			Permissions: []scenario.Permission{scenario.PermAnonymous},
		}, {
			// The organisation's servers are ExchangeServers here: what an Edge's agents
			// stamped (X-MS-Exchange-Organization-*) travels on to the mailbox.
			Name: DefaultConnector + " (organisation)", Server: srv.Name, Bind: ":25", TLS: true,
			Permissions: []scenario.Permission{scenario.PermExchangeServers}, ExternallySecured: true,
			AcceptAnyRecipient: true, RemoteIPRanges: cfg.OrgRanges,
		}}
	}
	tcfg := transport.Config{
		Scenario: cfg.Scenario, Server: &srv, Addr: cfg.Addr, PortMap: cfg.PortMap, OutPort: cfg.OutPort,
		SpoolDir: cfg.SpoolDir, Directory: nil, Resolver: cfg.Resolver, Trace: cfg.Trace, Clock: cfg.Clock,
		ServerTLS: cfg.ServerTLS, ClientTLS: cfg.ClientTLS, Logger: cfg.Logger, Seed: cfg.Seed, Gate: cfg.Gate,
		Router: h, Connectors: conns, ShadowRanges: cfg.OrgRanges,
	}
	if srv.ShadowRedundancy != nil && *srv.ShadowRedundancy {
		if h.shadow, err = h.openShadow(); err != nil {
			return nil, err
		}
		tcfg.Shadow = h.shadow
	}
	t, err := transport.Start(ctx, tcfg)
	if err != nil {
		return nil, fmt.Errorf("hub %s: %w", srv.Name, err)
	}
	h.Transport = t
	close(h.ready)
	if ls := org.LinkState(); ls != nil {
		ls.Attach(srv.Name, cfg.Trace, cfg.Clock, h.rerouteFor)
		h.links = ls
	}
	if h.shadow != nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		h.stop, h.done = cancel, make(chan struct{})
		go func() { defer close(h.done); h.shadow.Run(sctx) }()
	}
	return h, nil
}

// ShadowDir is where a Hub with spool dir keeps its shadow copies.
func ShadowDir(spool string) string { return filepath.Join(spool, "shadow") }

// openShadow opens the Hub's shadow copies; one resubmitted goes back into the Hub's
// queue as a categorized message, routed afresh.
func (h *Server) openShadow() (*shadow.Manager, error) {
	sv := h.cfg.Server
	retries := scenario.DefaultShadowHeartbeatRetryCount
	if sv.ShadowHeartbeatRetryCount != nil {
		retries = *sv.ShadowHeartbeatRetryCount
	}
	timeout := sv.ShadowHeartbeatTimeout.D()
	if timeout <= 0 {
		timeout = scenario.DefaultShadowHeartbeatTimeout
	}
	m, err := shadow.Open(ShadowDir(h.cfg.SpoolDir),
		shadow.WithClock(h.cfg.Clock), shadow.WithTrace(h.cfg.Trace), shadow.WithServer(sv.Name),
		shadow.WithLogger(h.cfg.Logger.With("server", sv.Name)), shadow.WithPeers(h.cfg.Peers),
		shadow.WithHeartbeat(timeout, retries), shadow.WithAutoDiscard(sv.ShadowMessageAutoDiscard.D()),
		shadow.WithQuerier(shadow.SMTPQuerier(sv.FQDN, h.cfg.Addr, min(timeout, 30*time.Second))),
		shadow.WithResubmitter(func(ctx context.Context, m *queue.Message, data []byte) error {
			<-h.ready
			return h.Transport.Queue().Enqueue(ctx, m, data)
		}))
	if err != nil {
		return nil, fmt.Errorf("hub %s: %w", sv.Name, err)
	}
	return m, nil
}

// Shadows are the Hub's shadow copies, each in the shadow queue of the server it was
// relayed to (QUEUE-012); none when shadow redundancy is off.
func (h *Server) Shadows() []queue.Message {
	if h.shadow == nil {
		return nil
	}
	return h.shadow.Snapshot()
}

// LinkState is the link-state traffic the Hub takes part in, which a link-state
// listener hands what it gets to; nil for a Hub of an organisation of sites alone.
func (h *Server) LinkState() *linkstate.Net { return h.links }

// Listeners lists the Hub's bound receive connectors.
func (h *Server) Listeners() []transport.Listener { return h.Transport.Listeners() }

// Queue exposes the Hub's queue for views and suites.
func (h *Server) Queue() *queue.Queue { return h.Transport.Queue() }

// Close stops the shadow heartbeat (it feeds the queue), then the transport server.
func (h *Server) Close() error {
	if h.links != nil {
		h.links.Detach(h.cfg.Server.Name)
	}
	if h.stop != nil {
		h.stop()
		<-h.done
	}
	return h.Transport.Close()
}

// Route implements transport.Router. A message not yet categorized is resolved and handed
// on as a new message addressed to the resolved recipients (Exchange's bifurcation):
// its envelope recipients are then done. A categorized message is routed.
func (h *Server) Route(ctx context.Context, m *queue.Message, rcpts []string, data []byte) ([]transport.Hop, []queue.Outcome) {
	select {
	case <-h.ready: // the queue may replay its spool before Start returns
	case <-ctx.Done():
		return nil, temporary(rcpts, "451 4.3.2 shutting down")
	}
	if !m.Categorized {
		return nil, h.categorize(ctx, m, rcpts, data)
	}
	ds, err := h.router.RouteResolved(ctx, rcpts, len(data))
	if err != nil {
		return nil, temporary(rcpts, "451 4.4.3 Directory unavailable: "+err.Error())
	}
	var hops []transport.Hop
	var out []queue.Outcome
	for _, d := range ds {
		var addrs []string
		for _, rc := range d.Recipients {
			addrs = append(addrs, rc.Address)
		}
		if d.Kind == KindFailed {
			for _, a := range addrs {
				out = append(out, queue.Outcome{Rcpt: a, Status: queue.StatusPermanent, Reply: d.Reply})
			}
			continue
		}
		if d.Kind == KindUnreachable {
			for _, a := range addrs {
				out = append(out, queue.Outcome{Rcpt: a, Status: queue.StatusTemporary, Reply: d.Reply, Queue: queue.QueueUnreachable})
			}
			continue
		}
		if len(d.Hosts) == 0 && d.Domain == "" {
			for _, a := range addrs {
				out = append(out, queue.Outcome{Rcpt: a, Status: queue.StatusTemporary, Reply: "451 4.4.0 no server reachable for " + d.NextHop, Queue: d.Key})
			}
			continue
		}
		hops = append(hops, transport.Hop{Key: d.Key, Connector: d.Connector, Reason: d.Reason,
			Next: nextHop(d), Rcpts: addrs, Final: d.Kind == KindMailbox, Shadow: d.Relay,
			External: d.Kind == KindConnector && !d.Relay})
	}
	return hops, out
}

// rerouteFor routes what waits for a connector afresh once the Hub's table says it
// went down or came up, rather than at each message's next retry (ROUTE-020).
func (h *Server) rerouteFor(s linkstate.State) {
	name := strings.ToLower(s.Connector)
	h.Transport.Queue().RetryNow("rgc:"+name, "bridgehead:"+name)
}

// Attempted implements transport.HopObserver: a local bridgehead whose attempt over a
// routing group connector failed at every remote bridgehead reports it failed, one
// that got a message across reports it working (ROUTE-020).
func (h *Server) Attempted(hop transport.Hop, results []smtpout.Result) {
	conn := ConnectorOfHop(hop.Key)
	if h.links == nil || conn == "" || len(results) == 0 {
		return
	}
	for _, res := range results {
		if res.Delivered || res.Permanent {
			h.links.Succeeded(h.cfg.Server.Name, conn)
			return
		}
	}
	h.links.Failed(h.cfg.Server.Name, conn)
}

// categorize resolves the envelope and queues the resolved copy; it reports the
// envelope recipients done (or failed, or held on a directory outage).
func (h *Server) categorize(ctx context.Context, m *queue.Message, rcpts []string, data []byte) []queue.Outcome {
	// Only the organisation's own domains are in the directory; anything else (a DSN to
	// an Internet sender, say) is already as resolved as it will be.
	var lookup []string
	var results []categorizer.Result
	relay := map[string]bool{}
	for _, rc := range rcpts {
		ad, ok := h.cfg.Scenario.AcceptedDomain(domainOf(rc))
		switch {
		case ok && ad.Type == scenario.Authoritative:
			lookup = append(lookup, rc)
		case ok && ad.Type == scenario.InternalRelay:
			lookup = append(lookup, rc)
			relay[strings.ToLower(rc)] = true
		default:
			results = append(results, categorizer.Result{Original: rc, Address: rc, Kind: categorizer.KindExternal})
		}
	}
	found, err := h.cat.Resolve(ctx, lookup)
	if err != nil {
		// CAT-006: never "unknown" because the directory is down.
		return temporary(rcpts, "451 4.4.3 Directory unavailable: "+err.Error())
	}
	for _, res := range found {
		// An internal-relay domain's unknown recipients live elsewhere (ACCEPT-007).
		if res.Kind == categorizer.KindFailed && res.Status == categorizer.StatusUnknown && relay[strings.ToLower(res.Original)] {
			res = categorizer.Result{Original: res.Original, Address: res.Original, Kind: categorizer.KindExternal}
		}
		results = append(results, res)
	}
	resolved := map[string]bool{}
	var failed []categorizer.Result
	// The categorized message carries the envelope's ID forked, so that while it waits
	// this Hub still answers a shadow's question about the envelope as held (QUEUE-012).
	next := &queue.Message{ID: shadow.ForkedID(m.ID), From: m.From, HeaderID: m.HeaderID, Categorized: true,
		Ret: m.Ret, EnvID: m.EnvID}
	var names []string
	var expanded []queue.Outcome
	for _, res := range results {
		if res.Kind == categorizer.KindFailed {
			failed = append(failed, res)
			continue
		}
		k := strings.ToLower(res.Original)
		qr := resolvedRecipient(m.Recipient(res.Original), res)
		if len(res.ExpandedFrom) > 0 && !resolved[k] {
			expanded = append(expanded, queue.Outcome{Rcpt: res.Original, Status: queue.StatusDelivered,
				Reply: "250 2.1.5 group " + res.ExpandedFrom[0] + " expanded"})
		}
		resolved[k] = true
		next.Recipients = append(next.Recipients, qr)
		names = append(names, res.Address)
	}
	var ruled ruleVerdict
	if len(next.Recipients) > 0 {
		ruled = h.applyRules(m, next, &names, &data)
	}
	var out []queue.Outcome
	if len(next.Recipients) > 0 {
		if err := h.Transport.Queue().Enqueue(ctx, next, data); err != nil {
			return temporary(rcpts, "451 4.3.0 could not queue the categorized message: "+err.Error())
		}
		h.Transport.Notify(m, data, expanded, dsn.Expanded)
		h.cfg.Trace.Record(trace.Event{Time: h.cfg.Clock.Now(), Type: trace.Categorize, MessageID: m.ID, HeaderID: m.HeaderID,
			Server: h.cfg.Server.Name, Sender: m.From, Recipients: names,
			Detail: fmt.Sprintf("resolved %d envelope recipient(s) to %d; continued as %s", len(rcpts), len(names), next.ID)})
		h.trackResolution(m, results)
		h.cfg.Trace.Record(trace.Event{Time: h.cfg.Clock.Now(), Type: trace.Transfer, MessageID: m.ID, HeaderID: m.HeaderID,
			Server: h.cfg.Server.Name, Sender: m.From, Recipients: names,
			Detail: "recipients moved to the categorized message " + next.ID, CopyID: next.ID})
	}
	failedBy := map[string]categorizer.Result{}
	for _, f := range failed {
		if _, ok := failedBy[strings.ToLower(f.Original)]; !ok {
			failedBy[strings.ToLower(f.Original)] = f
		}
	}
	for _, rc := range rcpts {
		k := strings.ToLower(rc)
		switch f, bad := failedBy[k]; {
		case resolved[k] && ruled.reply != "":
			status := queue.StatusPermanent
			if ruled.deleted {
				status = queue.StatusDelivered
			}
			out = append(out, queue.Outcome{Rcpt: rc, Status: status, Reply: ruled.reply})
		case resolved[k]:
			out = append(out, queue.Outcome{Rcpt: rc, Status: queue.StatusDelivered, Reply: "250 2.1.5 categorized"})
		case bad:
			out = append(out, queue.Outcome{Rcpt: rc, Status: queue.StatusPermanent, Reply: fmt.Sprintf("550 %s %s", f.Status, f.Reason)})
		default:
			// Nothing to deliver (an empty group, a duplicate of another recipient).
			out = append(out, queue.Outcome{Rcpt: rc, Status: queue.StatusDelivered, Reply: "250 2.1.5 nothing to deliver"})
		}
	}
	return out
}

// HeaderRulesApplied marks a message the organisation's transport rules have changed,
// so that the next Hub it crosses does not apply them again. An Edge strips
// every X-MS-Exchange-Organization-* field an Internet client writes.
const HeaderRulesApplied = "X-MS-Exchange-Organization-Transport-Rules-Applied"

// ruleVerdict is what the rules decided for the envelope recipients: reply is their
// outcome's reply when a rule rejected or deleted the message.
type ruleVerdict struct {
	reply   string
	deleted bool
}

// applyRules runs the organisation's transport rules on the categorized message
// (FILTER-011, FILTER-012), once in the organisation: a reject fails every recipient
// with the rule's status, so the sender gets an NDR; a delete drops the message with a
// DROP event and no DSN; the other actions change data and the recipients.
func (h *Server) applyRules(m, next *queue.Message, names *[]string, data *[]byte) ruleVerdict {
	// A notification (the null sender) is not judged again: it quotes the message it
	// is about, which would match the rule that refused that message.
	if h.rules == nil || m.From == "" || hasField(*data, HeaderRulesApplied) {
		return ruleVerdict{}
	}
	msg := &rules.Message{From: m.From, Rcpts: slices.Clone(*names), Data: *data}
	o := h.rules.Apply(msg)
	ev := trace.Event{Time: h.cfg.Clock.Now(), Type: trace.AgentInfo, MessageID: m.ID, HeaderID: m.HeaderID,
		Server: h.cfg.Server.Name, Sender: m.From, Recipients: *names, Source: trace.SourceAgent, Agent: TransportRuleAgent,
		Detail: TransportRuleAgent + ": " + strings.Join(o.Applied, "; ")}
	switch {
	case o.Reject != nil:
		r := o.Reject
		reply := fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], replies.RuleRejected(r.Code, r.Enhanced, r.Text).Message)
		ev.Type, ev.Reply = trace.Fail, reply
		h.cfg.Trace.Record(ev)
		next.Recipients, *names = nil, nil
		return ruleVerdict{reply: reply}
	case o.Deleted:
		ev.Type = trace.Drop
		h.cfg.Trace.Record(ev)
		next.Recipients, *names = nil, nil
		return ruleVerdict{reply: "250 2.0.0 deleted by transport rule " + o.Rule, deleted: true}
	case o.Changed:
		h.cfg.Trace.Record(ev)
		given := next.Recipients
		next.Recipients = nil
		for _, a := range msg.Rcpts {
			qr := queue.Recipient{Addr: a}
			for _, g := range given {
				if strings.EqualFold(g.Addr, a) {
					qr = g
					break
				}
			}
			next.Recipients = append(next.Recipients, qr)
		}
		*names = slices.Clone(msg.Rcpts)
		// Marked only when changed: a message no rule matched here matches none at the
		// next Hub either, which sees it as it was and with fewer recipients.
		*data = append([]byte(HeaderRulesApplied+": "+h.cfg.Server.Name+"\r\n"), msg.Data...)
	}
	return ruleVerdict{}
}

// TransportRuleAgent is what the trace calls the Hub's rules, as Exchange does.
const TransportRuleAgent = "Transport Rule Agent"

// hasField says whether data's header has the field name.
func hasField(data []byte, name string) bool {
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	return hdr.Has(name)
}

// resolvedRecipient is what the categorized message says of one resolved address:
// ORCPT stays what the sender gave, or becomes the envelope address it came from when
// that was rewritten. A group's members are told nothing on success, since the group
// address already was (an alias's "expanded", RFC 3461 §5.2.7.3); a forward is 1:1
// and keeps NOTIFY as it was (§5.2.7.2).
func resolvedRecipient(orig *queue.Recipient, res categorizer.Result) queue.Recipient {
	qr := queue.Recipient{Addr: res.Address}
	if orig != nil {
		qr.ORCPT, qr.Notify = orig.ORCPT, orig.Notify
	}
	if qr.ORCPT == "" && !strings.EqualFold(res.Address, res.Original) {
		qr.ORCPT = res.Original
	}
	if len(res.ExpandedFrom) > 0 && len(qr.Notify) > 0 {
		var n []string
		for _, k := range qr.Notify {
			if !strings.EqualFold(k, queue.NotifySuccess) {
				n = append(n, k)
			}
		}
		if len(n) == 0 {
			n = []string{queue.NotifyNever}
		}
		qr.Notify = n
	}
	return qr
}

func temporary(rcpts []string, reply string) []queue.Outcome {
	out := make([]queue.Outcome, len(rcpts))
	for i, rc := range rcpts {
		out[i] = queue.Outcome{Rcpt: rc, Status: queue.StatusTemporary, Reply: reply}
	}
	return out
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

func nextHop(d Decision) smtpout.Hop {
	h := smtpout.Hop{Hosts: d.Hosts, Domain: d.Domain, RequireTLS: d.RequireTLS}
	if d.Auth != nil {
		h.Username, h.Password = d.Auth.Username, d.Auth.Password
	}
	return h
}

// trackResolution records what the categorizer did to the recipients (EX-TRACK,
// TRACE-008): one EXPAND per group with the members it gave, one REDIRECT per
// forwarding mailbox, one RESOLVE per address rewritten to another.
func (h *Server) trackResolution(m *queue.Message, results []categorizer.Result) {
	now := h.cfg.Clock.Now()
	ev := func(t trace.Type, rcpts []string, detail string) {
		h.cfg.Trace.Record(trace.Event{Time: now, Type: t, MessageID: m.ID, HeaderID: m.HeaderID,
			Server: h.cfg.Server.Name, Sender: m.From, Recipients: rcpts, Detail: detail})
	}
	type hop struct {
		t    trace.Type
		from string
	}
	var order []hop
	reached := map[hop][]string{}
	for _, res := range results {
		if res.Kind == categorizer.KindFailed {
			continue
		}
		for _, g := range res.ExpandedFrom {
			k := hop{trace.Expand, g}
			if _, ok := reached[k]; !ok {
				order = append(order, k)
			}
			reached[k] = append(reached[k], res.Address)
		}
		for _, f := range res.ForwardedFrom {
			k := hop{trace.Redirect, f}
			if _, ok := reached[k]; !ok {
				order = append(order, k)
			}
			reached[k] = append(reached[k], res.Address)
		}
		if len(res.ExpandedFrom) == 0 && len(res.ForwardedFrom) == 0 && !strings.EqualFold(res.Original, res.Address) {
			ev(trace.Resolve, []string{res.Address}, fmt.Sprintf("%s resolved to %s", res.Original, res.Address))
		}
	}
	for _, k := range order {
		switch k.t {
		case trace.Expand:
			ev(k.t, reached[k], "group "+k.from+" expanded")
		case trace.Redirect:
			ev(k.t, reached[k], "mail for "+k.from+" forwarded")
		}
	}
}
