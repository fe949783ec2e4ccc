package scenario

import (
	"fmt"
	"strings"
)

// routingGroups checks an Exchange 2003 organisation: routing groups of known
// servers, each server in one group at most and not also in a site, a master that is
// a Hub of its group, and connectors between two distinct groups whose bridgeheads
// are Hubs of the right end.
func (v *validator) routingGroups() {
	org := &v.s.Org
	switch org.Routing {
	case "", RoutingSites, RoutingGroups:
	default:
		v.errorf("org.routing", "unknown routing %q; want one of %s, %s", org.Routing, RoutingSites, RoutingGroups)
		return
	}
	if org.Routing != RoutingGroups {
		if len(org.RoutingGroups) > 0 {
			v.keyErrorf("org.routing_groups", "routing groups need org.routing: %s", RoutingGroups)
		}
		if len(org.RoutingGroupConnectors) > 0 {
			v.keyErrorf("org.routing_group_connectors", "routing group connectors need org.routing: %s", RoutingGroups)
		}
		return
	}
	if len(org.RoutingGroups) == 0 {
		v.errorf("org.routing", "%s needs org.routing_groups", RoutingGroups)
	}
	groups := map[string]int{}
	var names []string
	member := map[string]string{} // lower-case server -> path of its first membership
	groupOf := map[string]string{}
	for i, g := range org.RoutingGroups {
		p := fmt.Sprintf("org.routing_groups[%d]", i)
		k := strings.ToLower(g.Name)
		switch {
		case g.Name == "":
			v.errorf(p+".name", "missing (a routing group needs a name)")
		case v.isSite(k):
			v.errorf(p+".name", "%q is also a site's name; a routing group and a site are told apart by name", g.Name)
		default:
			if first, dup := groups[k]; dup {
				v.errorf(p+".name", "duplicate routing group name %q (first at line %d)", g.Name, v.line(fmt.Sprintf("org.routing_groups[%d].name", first)))
			} else {
				groups[k] = i
				names = append(names, g.Name)
			}
		}
		if len(g.Servers) == 0 {
			v.errorf(p+".servers", "missing (a routing group needs at least one server)")
		}
		hubs := 0
		for j, n := range g.Servers {
			sp := fmt.Sprintf("%s.servers[%d]", p, j)
			sv, ok := v.server(n)
			if !ok {
				v.unknownServer(sp, n)
				continue
			}
			if first, dup := member[strings.ToLower(n)]; dup {
				v.errorf(sp, "server %q is already in a routing group (line %d); a server is in one group", n, v.line(first))
				continue
			}
			member[strings.ToLower(n)] = sp
			groupOf[strings.ToLower(n)] = k
			if sv.Site != "" {
				v.errorf(sp, "server %q has a site (%s); a server routes by its site or by its routing group, not both", n, sv.Site)
			}
			if sv.Role == RoleHub {
				hubs++
			}
		}
		if hubs == 0 && len(g.Servers) > 0 {
			v.errorf(p+".servers", "no hub server in routing group %q; a group needs one to route", g.Name)
		}
		if g.Master != "" {
			switch sv, ok := v.server(g.Master); {
			case !ok:
				v.unknownServer(p+".master", g.Master)
			case groupOf[strings.ToLower(g.Master)] != k:
				v.errorf(p+".master", "%q is not a server of routing group %q", g.Master, g.Name)
			case sv.Role != RoleHub:
				v.errorf(p+".master", "%q is a %s server; the routing group master is a hub", g.Master, sv.Role)
			}
		}
	}
	for i, sv := range org.Servers {
		if (sv.Role == RoleHub || sv.Role == RoleMailbox) && sv.Site == "" && member[strings.ToLower(sv.Name)] == "" {
			v.errorf(fmt.Sprintf("org.servers[%d].name", i), "%s server %q is in no routing group (and no site)", sv.Role, sv.Name)
		}
	}
	conns := map[string]int{}
	for i, c := range org.RoutingGroupConnectors {
		p := fmt.Sprintf("org.routing_group_connectors[%d]", i)
		if c.Name == "" {
			v.errorf(p+".name", "missing (a connector needs a name)")
		} else if first, dup := conns[strings.ToLower(c.Name)]; dup {
			v.errorf(p+".name", "duplicate connector name %q (first at line %d)", c.Name, v.line(fmt.Sprintf("org.routing_group_connectors[%d].name", first)))
		} else {
			conns[strings.ToLower(c.Name)] = i
		}
		// An end may be an AD site: the interop connector between a legacy bridgehead
		// and an Exchange 2007 Hub (ROUTE-022).
		end := func(key, name string) string {
			if name == "" {
				v.errorf(p+"."+key, "missing; want a routing group%s", known(names, "routing groups"))
				return ""
			}
			k := strings.ToLower(name)
			if _, ok := groups[k]; !ok && !v.isSite(k) {
				if len(org.Sites) > 0 {
					// In coexistence the interop connector has a site at one end.
					all := append([]string(nil), names...)
					for _, st := range org.Sites {
						all = append(all, st.Name)
					}
					v.errorf(p+"."+key, "unknown routing group or site %q%s", name, known(all, "routing groups or sites"))
					return ""
				}
				v.errorf(p+"."+key, "unknown routing group %q%s", name, known(names, "routing groups"))
				return ""
			}
			return k
		}
		from, to := end("from", c.From), end("to", c.To)
		if from != "" && from == to {
			v.errorf(p+".to", "connects routing group %q to itself", c.To)
		}
		if from != "" && to != "" && v.isSite(from) && v.isSite(to) {
			v.errorf(p+".to", "joins two sites (%s, %s); sites are joined by site_links, a routing group connector has a routing group at one end at least", c.From, c.To)
		}
		if c.Cost < 0 || c.Cost > 100 {
			v.errorf(p+".cost", "must be 1 to 100 (0 for the default, 1), got %d", c.Cost)
		}
		if c.MaxMessageSize < 0 {
			v.errorf(p+".max_message_size", "must not be negative, got %d", c.MaxMessageSize)
		}
		if c.AddressSpace != "" && c.AddressSpace != "*" {
			v.errorf(p+".address_space", "%q: a routing group connector carries the whole organisation, \"*\"; an address space of its own is an SMTP connector's (send_connectors)", c.AddressSpace)
		}
		bridgeheads := func(key, group string, list []string) {
			seen := map[string]bool{}
			for j, n := range list {
				bp := fmt.Sprintf("%s.%s[%d]", p, key, j)
				sv, ok := v.server(n)
				switch {
				case !ok:
					v.unknownServer(bp, n)
				case seen[strings.ToLower(n)]:
					v.errorf(bp, "%q is listed twice", n)
				case sv.Role != RoleHub:
					v.errorf(bp, "%q is a %s server; a bridgehead is a hub", n, sv.Role)
				case group != "" && v.isSite(group) && !strings.EqualFold(sv.Site, group):
					v.errorf(bp, "%q is not a server of site %q", n, org.Sites[v.sites[group]].Name)
				case group != "" && !v.isSite(group) && groupOf[strings.ToLower(n)] != group:
					v.errorf(bp, "%q is not a server of routing group %q", n, org.RoutingGroups[groups[group]].Name)
				}
				seen[strings.ToLower(n)] = true
			}
		}
		bridgeheads("local_bridgeheads", from, c.LocalBridgeheads)
		bridgeheads("remote_bridgeheads", to, c.RemoteBridgeheads)
		if len(c.RemoteBridgeheads) == 0 {
			v.errorf(p+".remote_bridgeheads", "missing; want at least one hub of the to group")
		}
		if v.isSite(from) && len(c.LocalBridgeheads) == 0 {
			v.errorf(p+".local_bridgeheads", "missing; an interop connector from site %q names its Exchange 2007 Hubs", c.From)
		}
	}
}

func (v *validator) isSite(lower string) bool {
	_, ok := v.sites[lower]
	return ok
}
