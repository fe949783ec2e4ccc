package scenario

import (
	"fmt"
	"mime"
	"strings"

	"github.com/miekg/dns"
)

// MaxGeneratedSize bounds a generated body or attachment: repro holds the message in
// memory, and a typo of three zeros should be an error, not a process out of memory.
const MaxGeneratedSize = 64 << 20

// Action is the one key a step gives ("down", "advance", ...).
func (st Step) Action() string {
	switch {
	case st.Down != "":
		return "down"
	case st.Up != "":
		return "up"
	case st.LinkDown != "":
		return "link_down"
	case st.LinkUp != "":
		return "link_up"
	case st.Advance != 0:
		return "advance"
	case st.Send != 0:
		return "send"
	case st.DNS != nil:
		return "dns"
	case st.Host != nil:
		return "host"
	}
	return ""
}

// timeline checks the steps in order, as they will run: a server goes down before
// it comes up, a message is sent once, a host and a server exist.
func (v *validator) timeline() {
	down := map[string]string{} // lower-case server -> path of the step that took it down
	cut := map[string]string{}  // lower-case connector -> path of the step that cut it
	sent := map[int]string{}    // message number -> path of the step that sent it
	for i, st := range v.s.Timeline {
		p := fmt.Sprintf("timeline[%d]", i)
		var given []string
		for _, k := range StepKeys {
			if _, ok := v.nodes[p+"."+k]; ok {
				given = append(given, k)
			}
		}
		switch {
		case len(given) == 0:
			v.errorf(p, "empty step; a step gives one of %s", strings.Join(StepKeys, ", "))
			continue
		case len(given) > 1:
			v.keyErrorf(p+"."+given[1], "a step gives one action, and this one also gives %s: put each in a step of its own", given[0])
			continue
		}
		k := given[0]
		kp := p + "." + k
		switch k {
		case "down", "up":
			name := st.Down + st.Up
			srv, ok := v.server(name)
			switch {
			case name == "":
				v.errorf(kp, "missing; %s names %s", k, v.serversOf("a server of the organisation", RoleEdge, RoleHub, RoleMailbox))
			case !ok:
				v.errorf(kp, "unknown server %q; %s names %s", name, k, v.serversOf("a server of the organisation", RoleEdge, RoleHub, RoleMailbox))
			case k == "down" && down[strings.ToLower(name)] != "":
				v.errorf(kp, "%s is down already (since line %d); bring it up first", srv.Name, v.line(down[strings.ToLower(name)]))
			case k == "down":
				down[strings.ToLower(name)] = kp
			case down[strings.ToLower(name)] == "":
				v.errorf(kp, "%s is not down at this point of the timeline; a step down: %s must come first", srv.Name, srv.Name)
			default:
				delete(down, strings.ToLower(name))
			}
		case "link_down", "link_up":
			name := st.LinkDown + st.LinkUp
			c, ok := v.s.RoutingGroupConnector(name)
			k2 := strings.ToLower(name)
			switch {
			case !ok:
				v.errorf(kp, "unknown routing group connector %q; %s names %s (an AD site link has no state of its own: take its Hubs down instead)", name, k, v.connectorsOf())
			case k == "link_down" && cut[k2] != "":
				v.errorf(kp, "%s is cut already (since line %d); mend it with link_up first", c.Name, v.line(cut[k2]))
			case k == "link_down":
				cut[k2] = kp
			case cut[k2] == "":
				v.errorf(kp, "%s is not cut at this point of the timeline; a step link_down: %s must come first", c.Name, c.Name)
			default:
				delete(cut, k2)
			}
		case "advance":
			if st.Advance <= 0 {
				v.errorf(kp, "must be a duration > 0, such as 10m or 2h, got %s", st.Advance)
			}
		case "send":
			n := st.Send
			switch {
			case len(v.s.Messages) == 0:
				v.errorf(kp, "there are no messages to send; send names a message of messages: by its number, from 1")
			case n < 1 || n > len(v.s.Messages):
				v.errorf(kp, "no message %d; send names a message of messages: by its number, 1 to %d", n, len(v.s.Messages))
			case sent[n] != "":
				v.errorf(kp, "message %d is sent already (line %d); a message is sent once", n, v.line(sent[n]))
			default:
				sent[n] = kp
			}
		case "dns":
			v.dnsStep(kp, st.DNS)
		case "host":
			v.hostStep(kp, st.Host)
		}
	}
}

// connectorsOf names the scenario's routing group connectors, for an error that says
// what a link step may name.
func (v *validator) connectorsOf() string {
	var names []string
	for _, c := range v.s.Org.RoutingGroupConnectors {
		names = append(names, c.Name)
	}
	if len(names) == 0 {
		return "a routing group connector, of which the scenario has none"
	}
	return "a routing group connector (" + strings.Join(names, ", ") + ")"
}

func (v *validator) dnsStep(p string, d *DNSStep) {
	if d == nil || len(d.Set) == 0 && len(d.Remove) == 0 {
		v.errorf(p, "nothing to change; dns gives set: [RECORD, ...] (zone-file lines) and/or remove: [NAME or NAME TYPE, ...]")
		return
	}
	for j, rec := range d.Set {
		rp := fmt.Sprintf("%s.set[%d]", p, j)
		rr, err := dns.NewRR(rec)
		switch {
		case err != nil:
			v.errorf(rp, "bad record: %v", err)
		case rr == nil:
			v.errorf(rp, "empty record; want a zone-file line such as \"fabrikam.test. MX 10 mx2.fabrikam.test.\"")
		}
	}
	for j, rm := range d.Remove {
		if problem := removeProblem(rm); problem != "" {
			v.errorf(fmt.Sprintf("%s.remove[%d]", p, j), "%s", problem)
		}
	}
}

// RemoveTarget reads a dns remove entry: the name and the record type, dns.TypeANY
// when only a name is given.
func RemoveTarget(s string) (name string, qtype uint16, ok bool) {
	f := strings.Fields(s)
	switch len(f) {
	case 1:
		return f[0], dns.TypeANY, validDomain(f[0])
	case 2:
		t, known := dns.StringToType[strings.ToUpper(f[1])]
		return f[0], t, validDomain(f[0]) && known && t != dns.TypeANY
	}
	return "", 0, false
}

func removeProblem(s string) string {
	if _, _, ok := RemoveTarget(s); !ok {
		return fmt.Sprintf("%q is not NAME or NAME TYPE (e.g. \"mx1.fabrikam.test.\" or \"fabrikam.test. MX\")", s)
	}
	return ""
}

func (v *validator) hostStep(p string, h *HostStep) {
	var names []string
	found := false
	for _, x := range v.s.Internet.Hosts {
		names = append(names, x.Name)
		found = found || h != nil && canonDomain(x.Name) == canonDomain(h.Name) && h.Name != ""
	}
	switch {
	case h == nil || h.Name == "":
		v.errorf(p+".name", "missing; host names a fake Internet host%s", known(names, "hosts"))
		return
	case !found:
		v.errorf(p+".name", "unknown host %q; host names a fake Internet host of internet.hosts%s", h.Name, known(names, "hosts"))
	}
	if _, given := v.nodes[p+".behaviour"]; !given {
		v.errorf(p+".behaviour", "missing; want one of %s, or a mapping as internet.hosts[].behaviour has", strings.Join(actions, ", "))
		return
	}
	v.behaviour(p+".behaviour", h.Behaviour)
}

// content checks what a message carries besides its envelope.
func (v *validator) content(p string, m Message) {
	switch {
	case m.Size < 0:
		v.errorf(p+".size", "must not be negative, got %d", m.Size)
	case m.Size > MaxGeneratedSize:
		v.errorf(p+".size", "%d octets is more than repro generates (at most %d)", m.Size, MaxGeneratedSize)
	case m.Size > 0 && m.Body != "":
		v.errorf(p+".size", "size generates the body, and body gives one: keep one of them")
	}
	for j, a := range m.Attachments {
		ap := fmt.Sprintf("%s.attachments[%d]", p, j)
		if strings.TrimSpace(a.Name) == "" {
			v.errorf(ap+".name", "missing (an attachment needs a file name)")
		} else if strings.ContainsAny(a.Name, "/\\\r\n\"") {
			v.errorf(ap+".name", "%q is not a file name (no path, quotes or line breaks)", a.Name)
		}
		if a.ContentType != "" {
			if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || !strings.Contains(mt, "/") || strings.HasPrefix(mt, "multipart/") {
				v.errorf(ap+".content_type", "%q is not a content type for a file (want type/subtype, e.g. application/pdf)", a.ContentType)
			}
		}
		_, hasContent := v.nodes[ap+".content"]
		switch {
		case a.Size < 0:
			v.errorf(ap+".size", "must not be negative, got %d", a.Size)
		case a.Size > MaxGeneratedSize:
			v.errorf(ap+".size", "%d octets is more than repro generates (at most %d)", a.Size, MaxGeneratedSize)
		case a.Size > 0 && hasContent:
			v.errorf(ap+".size", "size generates the content, and content gives it: keep one of them")
		case a.Size == 0 && !hasContent:
			v.errorf(ap, "an attachment gives its content or a size to generate")
		}
	}
}
