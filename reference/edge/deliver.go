package edge

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/routing"
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
	rcpts     []string
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
func (e *Edge) routeFor(ctx context.Context, rcpt string, size int) route {
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
	ch, err := routing.SelectConnector(s.Org.SendConnectors, e.cfg.Server.Name, domain, size)
	if err != nil {
		// Unreachable: held until expiry rather than bounced (ROUTE-014).
		o := queue.Outcome{Rcpt: rcpt, Status: queue.StatusTemporary, Reply: "451 4.4.0 Unreachable: " + err.Error()}
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

// Deliver implements queue.Deliverer.
func (e *Edge) Deliver(ctx context.Context, m *queue.Message, rcpts []string, data []byte) []queue.Outcome {
	groups := map[string]*route{}
	var keys []string
	var out []queue.Outcome
	for _, rc := range rcpts {
		r := e.routeFor(ctx, rc, len(data))
		if r.failure != nil {
			out = append(out, *r.failure)
			continue
		}
		g, ok := groups[r.key]
		if !ok {
			g = &r
			groups[r.key] = g
			keys = append(keys, r.key)
		}
		g.rcpts = append(g.rcpts, rc)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := groups[k]
		now := e.cfg.Clock.Now()
		e.cfg.Trace.Record(trace.Event{Time: now, Type: trace.Route, MessageID: m.ID, HeaderID: m.HeaderID,
			Server: e.cfg.Server.Name, Sender: m.From, Recipients: g.rcpts, Connector: g.connector,
			NextHop: strings.Join(g.hop.Hosts, ","), Detail: g.reason})
		for _, res := range e.out.Send(ctx, g.hop, m.From, g.rcpts, data) {
			o := queue.Outcome{Rcpt: res.Rcpt, Reply: res.Reply, RemoteMTA: res.RemoteMTA}
			switch {
			case res.Delivered:
				o.Status = queue.StatusDelivered
				e.cfg.Trace.Record(trace.Event{Time: e.cfg.Clock.Now(), Type: trace.Send, MessageID: m.ID, HeaderID: m.HeaderID,
					Server: e.cfg.Server.Name, Sender: m.From, Recipients: []string{res.Rcpt}, Connector: g.connector,
					NextHop: res.RemoteMTA, Reply: res.Reply})
			case res.Permanent:
				o.Status = queue.StatusPermanent
			default:
				o.Status = queue.StatusTemporary
			}
			out = append(out, o)
		}
	}
	return out
}
