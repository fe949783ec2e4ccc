package transport

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/reference/smtpd"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// route is where one recipient goes next.
type route struct {
	key       string
	connector string
	reason    string
	hop       smtpout.Hop
	failure   *queue.Outcome
}

// inboundConnector is the implicit EdgeSync connector to the subscribed site (ROUTE-015).
const inboundConnector = "EdgeSync - Inbound"

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// routeFor decides one recipient's next hop: accepted authoritative mail (and bare
// postmaster) goes to the Hubs; internal-relay mail goes to the Hubs when the directory
// knows the recipient and out through a send connector otherwise; external-relay and
// foreign domains always leave through a send connector (ACCEPT-007).
func (e *Server) routeFor(ctx context.Context, rcpt string, size int) route {
	s := e.cfg.Scenario
	domain := domainOf(rcpt)
	toHub := func(why string) route {
		if len(e.cfg.Hubs) == 0 {
			o := queue.Outcome{Rcpt: rcpt, Status: queue.StatusTemporary, Reply: "451 4.4.0 No Hub in the subscribed site"}
			return route{key: "hub", failure: &o}
		}
		return route{key: "hub", connector: inboundConnector, reason: why, hop: smtpout.Hop{Hosts: e.cfg.Hubs, RequireTLS: true}} // org peers only over TLS (ROUTE-017)
	}
	if domain == "" {
		return toHub("postmaster of the organisation")
	}
	if ad, ok := s.AcceptedDomain(domain); ok {
		switch ad.Type {
		case scenario.Authoritative:
			return toHub("authoritative domain " + ad.Domain)
		case scenario.InternalRelay:
			if e.cfg.Directory != nil {
				_, err := e.cfg.Directory.Lookup(ctx, rcpt)
				if err == nil {
					return toHub("internal relay domain " + ad.Domain + ", recipient in directory")
				}
				if !errors.Is(err, directory.ErrNotFound) {
					o := queue.Outcome{Rcpt: rcpt, Status: queue.StatusTemporary, Reply: "451 4.4.3 Directory unavailable: " + err.Error()}
					return route{key: "dir", failure: &o}
				}
			}
		}
	}
	ch, err := routing.SelectConnector(s.Org.SendConnectors, routing.Origin{Server: e.cfg.Server.Name, Own: true}, domain, size)
	if errors.Is(err, routing.ErrTooLarge) {
		o := queue.Outcome{Rcpt: rcpt, Status: queue.StatusPermanent, Reply: replies.TooLargeForConnectors(err)}
		return route{key: "too-large", failure: &o}
	}
	if err != nil {
		// Unreachable: held until expiry rather than bounced (ROUTE-014).
		o := queue.Outcome{Rcpt: rcpt, Status: queue.StatusTemporary, Reply: replies.Unreachable(err), Queue: queue.QueueUnreachable}
		return route{key: "unreachable", failure: &o}
	}
	c := ch.Connector
	hop := smtpout.Hop{Hosts: c.SmartHosts, Domain: domain, RequireTLS: c.TLS}
	if c.Auth != nil {
		hop.Username, hop.Password = c.Auth.Username, c.Auth.Password
	}
	key := "conn:" + c.Name
	if len(c.SmartHosts) == 0 {
		key += ":" + domain // MX delivery: one session per domain
	}
	return route{key: key, connector: c.Name, reason: ch.Reason, hop: hop}
}

// Hop is one next hop with the recipients that go there, as a Router decides it.
type Hop struct {
	Key, Connector, Reason string
	Next                   smtpout.Hop
	Rcpts                  []string
	// Final says the next hop is the recipients' mailbox store: a 250 there is final
	// delivery, which a NOTIFY=SUCCESS recipient hears of as "delivered".
	Final bool
	// Shadow marks a hop to another transport server of the organisation, whose
	// recipients the sender keeps shadow copies of (QUEUE-012).
	Shadow bool
	// External marks a hop out of the organisation: the message leaves without its
	// X-MS-Exchange-Organization-* fields (the SCL among them, FILTER-013), which are
	// the organisation's alone.
	External bool
}

// Router decides where a queued message's pending recipients go next. The outcomes it
// returns settle their recipients for this attempt without a send (failures, holds,
// recipients handed on in a new message); every other recipient is in one Hop.
type Router interface {
	Route(ctx context.Context, m *queue.Message, rcpts []string, data []byte) ([]Hop, []queue.Outcome)
}

// HopObserver is a Router told what each hop's attempt gave, as a bridgehead learns
// that a routing group connector failed or carried mail (ROUTE-020).
type HopObserver interface {
	Attempted(h Hop, results []smtpout.Result)
}

// edgeRouter routes as an Edge: inbound to the Hubs, everything else by connector.
type edgeRouter struct{ e *Server }

func (r edgeRouter) Route(ctx context.Context, m *queue.Message, rcpts []string, data []byte) ([]Hop, []queue.Outcome) {
	groups := map[string]*Hop{}
	var keys []string
	var out []queue.Outcome
	for _, rc := range rcpts {
		rt := r.e.routeFor(ctx, rc, len(data))
		if rt.failure != nil {
			out = append(out, *rt.failure)
			continue
		}
		g, ok := groups[rt.key]
		if !ok {
			g = &Hop{Key: rt.key, Connector: rt.connector, Reason: rt.reason, Next: rt.hop, External: rt.connector != inboundConnector}
			groups[rt.key] = g
			keys = append(keys, rt.key)
		}
		g.Rcpts = append(g.Rcpts, rc)
	}
	sort.Strings(keys)
	hops := make([]Hop, 0, len(keys))
	for _, k := range keys {
		hops = append(hops, *groups[k])
	}
	return hops, out
}

// Deliver implements queue.Deliverer.
func (e *Server) Deliver(ctx context.Context, m *queue.Message, rcpts []string, data []byte) []queue.Outcome {
	var router Router = edgeRouter{e}
	if e.cfg.Router != nil {
		router = e.cfg.Router
	}
	hops, out := router.Route(ctx, m, rcpts, data)
	params := dsnParams(m)
	var delivered, relayed []queue.Outcome
	for _, g := range hops {
		now := e.cfg.Clock.Now()
		e.cfg.Trace.Record(trace.Event{Time: now, Type: trace.Route, MessageID: m.ID, HeaderID: m.HeaderID,
			Server: e.cfg.Server.Name, Sender: m.From, Recipients: g.Rcpts, Connector: g.Connector,
			NextHop: strings.Join(g.Next.Hosts, ","), Detail: g.Reason})
		release, err := e.conns.acquire(ctx, g.Key)
		if err != nil { // shutting down: the queue keeps the message as it was
			for _, rc := range g.Rcpts {
				out = append(out, queue.Outcome{Rcpt: rc, Status: queue.StatusTemporary, Reply: "451 4.3.2 shutting down", Queue: g.Key})
			}
			continue
		}
		shadow := g.Shadow && e.cfg.Shadow != nil
		if shadow {
			e.cfg.Shadow.Prepare(ctx, g.Next.Hosts)
		}
		sent := data
		if g.External {
			sent = smtpd.StripOrgHeaders(data)
		}
		results := e.out.Send(ctx, g.Next, m.From, g.Rcpts, sent, params)
		release()
		if ob, ok := router.(HopObserver); ok && ctx.Err() == nil {
			ob.Attempted(g, results)
		}
		if shadow {
			e.keepShadows(ctx, m, g, results, data)
		}
		for _, res := range results {
			o := queue.Outcome{Rcpt: res.Rcpt, Reply: res.Reply, RemoteMTA: res.RemoteMTA, Queue: g.Key}
			switch {
			case res.Delivered:
				o.Status = queue.StatusDelivered
				switch {
				case g.Final:
					delivered = append(delivered, o)
				case !res.DSNPassed:
					// A next hop without DSN will not report success: say how far it
					// went (RFC 3461 §5.2.2).
					relayed = append(relayed, o)
				}
				e.cfg.Trace.Record(trace.Event{Time: e.cfg.Clock.Now(), Type: trace.Send, MessageID: m.ID, HeaderID: m.HeaderID,
					Server: e.cfg.Server.Name, Sender: m.From, Recipients: []string{res.Rcpt}, Connector: g.Connector,
					NextHop: res.RemoteMTA, Reply: res.Reply, CopyID: replies.QueuedID(res.Reply)})
			case res.Permanent:
				o.Status = queue.StatusPermanent
			default:
				o.Status = queue.StatusTemporary
			}
			out = append(out, o)
		}
	}
	e.notify(m, data, delivered, dsn.Delivered, time.Time{})
	e.notify(m, data, relayed, dsn.Relayed, time.Time{})
	return out
}

// dsnParams are the message's DSN parameters as the next hop gets them; nil when the
// sender gave none, so nothing is added on the way.
func dsnParams(m *queue.Message) *smtpout.DSN {
	var d *smtpout.DSN
	for _, r := range m.Recipients {
		if len(r.Notify) == 0 && r.ORCPT == "" {
			continue
		}
		if d == nil {
			d = &smtpout.DSN{Rcpts: map[string]smtpout.RcptDSN{}}
		}
		d.Rcpts[r.Addr] = smtpout.RcptDSN{Notify: r.Notify, ORCPT: r.ORCPT}
	}
	if m.Ret == "" && m.EnvID == "" {
		return d
	}
	if d == nil {
		d = &smtpout.DSN{}
	}
	d.Ret, d.EnvID = m.Ret, m.EnvID
	return d
}

// keepShadows makes the shadow copies of what the next hop took, one per transaction
// (the next hop's queue ID), before the queue forgets the recipients.
func (e *Server) keepShadows(ctx context.Context, m *queue.Message, g Hop, results []smtpout.Result, data []byte) {
	type txn struct{ remote, reply string }
	var order []txn
	took := map[txn][]string{}
	for _, res := range results {
		if !res.Delivered {
			continue
		}
		k := txn{res.RemoteMTA, res.Reply}
		if _, ok := took[k]; !ok {
			order = append(order, k)
		}
		took[k] = append(took[k], res.Rcpt)
	}
	for _, k := range order {
		if err := e.cfg.Shadow.Keep(ctx, m, g.Next.Hosts, k.remote, k.reply, took[k], data); err != nil {
			// The next hop has the message: without its shadow it is only less
			// protected, not lost.
			e.cfg.Logger.Error("shadow copy not kept", "msgid", m.ID, "next_hop", k.remote, "err", err)
		}
	}
}
