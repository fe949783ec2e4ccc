package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/trace"
)

// reproMessage is what happened to one message of the scenario.
type reproMessage struct {
	N        int               `json:"n"`
	From     string            `json:"from"`
	To       []string          `json:"to"`
	Via      string            `json:"via"`
	HeaderID string            `json:"message_id"`
	Rejected string            `json:"rejected,omitempty"`
	Paths    map[string]string `json:"paths"`
	Routes   []string          `json:"routes"`
	Events   []trace.Event     `json:"events"`
	Checks   []reproCheck      `json:"checks"`
}

type reproCheck struct {
	What     string `json:"what"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	OK       bool   `json:"ok"`
}

// runRepro starts a scenario's world in-process, submits each message of its
// `messages:`, waits until they settle, and prints each message's path, routing
// decisions and trace; exit 1 when an `expect:` does not hold, 2 on a bad scenario.
func runRepro(args []string) int {
	fs := flag.NewFlagSet("repro", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	svg := fs.String("svg", "", "draw the site graph with each message's path into this SVG file")
	path, s, ok := scenarioArg(fs, args, "usage: mailflow repro SCENARIO [--json] [--svg FILE]")
	if !ok {
		return 2
	}
	if len(s.Messages) == 0 {
		fmt.Fprintf(os.Stderr, "%s: messages: none to reproduce\n", path)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := inprocess.Start(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow repro:", err)
		return 1
	}
	defer topo.Stop(context.Background())

	var msgs []*reproMessage
	for i, m := range s.Messages {
		rm := &reproMessage{N: i + 1, From: m.From, To: m.To, Via: m.Via, HeaderID: fmt.Sprintf("repro-%d@mailflow.invalid", i+1)}
		if err := submit(ctx, topo, m, rm.HeaderID); err != nil {
			rm.Rejected = err.Error()
		}
		msgs = append(msgs, rm)
	}
	settle(ctx, topo)
	events := topo.Trace().Events()
	failed := false
	for i, rm := range msgs {
		describe(rm, events, hostNames(topo))
		rm.Checks = checks(s.Messages[i].Expect, rm)
		for _, c := range rm.Checks {
			failed = failed || !c.OK
		}
	}
	if *svg != "" {
		if err := writeSVG(*svg, s, msgs); err != nil {
			fmt.Fprintln(os.Stderr, "mailflow repro:", err)
			return 1
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"scenario": path, "messages": msgs, "ok": !failed})
	} else {
		printRepro(os.Stdout, msgs)
	}
	if failed {
		return 1
	}
	return 0
}

// submit sends one message through the server it names, as a client would.
func submit(ctx context.Context, topo *inprocess.Topology, m scenario.Message, id string) error {
	addr, err := topo.Endpoint(m.Via, "")
	if err != nil {
		return fmt.Errorf("via %s: %w (this version submits through an Edge)", m.Via, err)
	}
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("repro.mailflow.invalid"); err != nil {
		return err
	}
	data := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: mailflow repro\r\nMessage-ID: <%s>\r\n\r\nReproduced by mailflow.\r\n",
		orNull(m.From), strings.Join(m.To, ", "), id)
	err = c.SendMail(m.From, m.To, strings.NewReader(data))
	_ = c.Quit()
	return err
}

func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

// settle waits until every queue is empty, or nothing has happened for a second (a
// message held for a retry that is not due on the fake clock).
func settle(ctx context.Context, topo *inprocess.Topology) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, quietSince := -1, time.Now()
	for {
		n := len(topo.Trace().Events())
		if n != last {
			last, quietSince = n, time.Now()
		}
		busy := 0
		for _, l := range topo.Listeners() {
			if l.Kind == "smtp" || l.Kind == "hub" {
				name, _, _ := strings.Cut(l.Name, `\`)
				if q := topo.QueueLen(name); q > 0 {
					busy += q
				}
			}
		}
		if busy == 0 && time.Since(quietSince) > 100*time.Millisecond || time.Since(quietSince) > time.Second {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hostNames names the fake Internet hosts by address, for paths that leave the
// organisation.
func hostNames(topo *inprocess.Topology) map[string]string {
	out := map[string]string{}
	for _, h := range topo.Hosts() {
		if ip, _, err := net.SplitHostPort(h.Addr()); err == nil {
			out[ip] = h.Name()
		}
	}
	return out
}

// describe fills in a message's paths, routing decisions and events from the trace.
func describe(rm *reproMessage, all []trace.Event, hosts map[string]string) {
	id := rm.HeaderID
	for _, e := range all {
		if e.HeaderID == id {
			rm.Events = append(rm.Events, e)
			if e.Type == trace.Route {
				rm.Routes = append(rm.Routes, fmt.Sprintf("%s: %s", e.Server, e.Detail))
			}
		}
	}
	rm.Paths = map[string]string{}
	// hopsTo are the servers whose RECEIVE covered the address or the envelope
	// recipient it came from, in order.
	hopsTo := func(a string) []string {
		var hops []string
		for _, r := range rm.Events {
			if r.Type == trace.Receive && (containsFold(r.Recipients, a) || overlaps(r.Recipients, rm.To)) {
				hops = appendOnce(hops, r.Server)
			}
		}
		return hops
	}
	// A delivered copy's path ends at the mailbox it was stored in.
	for _, e := range rm.Events {
		if e.Type != trace.Deliver {
			continue
		}
		for _, a := range e.Recipients {
			local, _, _ := strings.Cut(a, "@")
			rm.Paths[strings.ToLower(a)] = strings.Join(append(hopsTo(a), e.Server+":"+local), " -> ")
		}
	}
	// One that left the organisation ends at the host it was sent to, by the last
	// send (a Hub hands it to the connector's source server first); a failed one
	// with the failure.
	delivered, left := map[string]bool{}, map[string]bool{}
	for a := range rm.Paths {
		delivered[a] = true
	}
	for _, e := range rm.Events {
		// Hand-offs inside the organisation are hops, not outcomes.
		internal := e.Connector == "EdgeSync - Inbound" || e.Connector == "Intra-Organization SMTP"
		if e.Type == trace.Fail || (e.Type == trace.Send && !internal) {
			for _, a := range e.Recipients {
				if _, ok := rm.Paths[strings.ToLower(a)]; delivered[strings.ToLower(a)] || ok && e.Type == trace.Fail {
					continue
				}
				end := "failed: " + e.Reply
				if e.Type == trace.Send {
					host, _, err := net.SplitHostPort(e.NextHop)
					if err != nil {
						host = e.NextHop
					}
					name, external := hosts[host]
					if !external && net.ParseIP(host) == nil {
						// Organisation servers are reached by address; a host reached by
						// name (a smart host, an MX) is outside.
						name, external = host, true
					}
					if !external && left[strings.ToLower(a)] {
						// A hand-off to the connector's source server logged after the
						// send out of the organisation: the path already ends outside.
						continue
					}
					if external {
						host = name
						left[strings.ToLower(a)] = true
					}
					end = host + " (" + e.Connector + ")"
				}
				rm.Paths[strings.ToLower(a)] = strings.Join(append(appendOnce(hopsTo(a), e.Server), end), " -> ")
			}
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if containsFold(b, x) {
			return true
		}
	}
	return false
}

func appendOnce(list []string, s string) []string {
	if len(list) > 0 && list[len(list)-1] == s {
		return list
	}
	return append(list, s)
}

// checks judges a message's `expect:`.
func checks(ex scenario.Expect, rm *reproMessage) []reproCheck {
	var out []reproCheck
	if ex.Path != "" {
		var actual []string
		for _, p := range rm.Paths {
			actual = append(actual, p)
		}
		sort.Strings(actual)
		got := strings.Join(actual, "; ")
		out = append(out, reproCheck{What: "path", Expected: ex.Path, Actual: got, OK: containsString(actual, ex.Path)})
	}
	for _, d := range ex.Delivered {
		// "MBX-LON/alice": stored by that server for that local part.
		server, local, _ := strings.Cut(d, "/")
		ok := false
		for _, e := range rm.Events {
			if e.Type == trace.Deliver && strings.EqualFold(e.Server, server) {
				for _, a := range e.Recipients {
					if l, _, _ := strings.Cut(a, "@"); strings.EqualFold(l, local) {
						ok = true
					}
				}
			}
		}
		actual := "not delivered there"
		if ok {
			actual = "delivered"
		}
		out = append(out, reproCheck{What: "delivered " + d, Expected: "delivered", Actual: actual, OK: ok})
	}
	if ex.Rejected != "" {
		out = append(out, reproCheck{What: "rejected", Expected: ex.Rejected, Actual: orNone(rm.Rejected),
			OK: strings.Contains(rm.Rejected, ex.Rejected)})
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(accepted)"
	}
	return s
}

func printRepro(w io.Writer, msgs []*reproMessage) {
	for _, m := range msgs {
		fmt.Fprintf(w, "message %d: <%s> -> %s via %s (Message-ID <%s>)\n", m.N, m.From, strings.Join(m.To, ", "), m.Via, m.HeaderID)
		if m.Rejected != "" {
			fmt.Fprintf(w, "  rejected: %s\n", m.Rejected)
		}
		var addrs []string
		for a := range m.Paths {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			fmt.Fprintf(w, "  path %s: %s\n", a, m.Paths[a])
		}
		for _, r := range m.Routes {
			fmt.Fprintf(w, "  route %s\n", r)
		}
		fmt.Fprintln(w, "  events:")
		for _, e := range m.Events {
			fmt.Fprintf(w, "    %s %-8s %-10s %s %s%s\n", e.Time.Format("15:04:05.000"), e.Server, e.Type,
				strings.Join(e.Recipients, ","), e.NextHop, strings.TrimRight(" "+e.Reply+" "+e.Detail, " "))
		}
		for _, c := range m.Checks {
			if c.OK {
				fmt.Fprintf(w, "  expect %s: ok\n", c.What)
			} else {
				fmt.Fprintf(w, "  expect %s: MISMATCH\n    expected: %s\n    actual:   %s\n", c.What, c.Expected, c.Actual)
			}
		}
		fmt.Fprintln(w)
	}
}

// errNoSites is returned when a scenario has no sites to draw.
var errNoSites = errors.New("the scenario has no sites to draw")

// writeSVG draws the sites on a circle, the site links with their costs, hub sites
// filled, and each message's path across sites as a coloured line.
func writeSVG(file string, s *scenario.Scenario, msgs []*reproMessage) error {
	g, err := routing.NewGraph(s)
	if err != nil {
		return err
	}
	sites := g.Sites()
	if len(sites) == 0 {
		return errNoSites
	}
	const w, h, r = 720, 560, 200
	pos := map[string][2]float64{}
	for i, name := range sites {
		a := 2 * math.Pi * float64(i) / float64(len(sites))
		pos[strings.ToLower(name)] = [2]float64{w/2 + r*math.Cos(a), h/2 + r*math.Sin(a)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", w, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	for _, l := range s.Org.SiteLinks {
		p, q := pos[strings.ToLower(l.Sites[0])], pos[strings.ToLower(l.Sites[1])]
		cost := l.Cost
		if l.ExchangeCost > 0 {
			cost = l.ExchangeCost
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#999" stroke-width="2"/>`+"\n", p[0], p[1], q[0], q[1])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#555" text-anchor="middle">%d</text>`+"\n", p[0]+(q[0]-p[0])*0.4, p[1]+(q[1]-p[1])*0.4-6, cost)
	}
	colours := []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}
	legend := 0
	for _, m := range msgs {
		// One line per distinct site path; a later Hub's decision that is the tail of
		// an earlier one adds nothing.
		var paths [][]string
		for _, route := range m.Routes {
			_, detail, _ := strings.Cut(route, ": ")
			if p := sitesOf(detail, pos); len(p) >= 2 && !tailOfAny(p, paths) {
				paths = append(paths, p)
			}
		}
		for _, sitesOn := range paths {
			c := colours[legend%len(colours)]
			var pts []string
			for _, st := range sitesOn {
				p := pos[st]
				pts = append(pts, fmt.Sprintf("%.0f,%.0f", p[0]+float64(legend*4), p[1]+float64(legend*4)))
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="4" stroke-opacity="0.8"/>`+"\n", strings.Join(pts, " "), c)
			fmt.Fprintf(&b, `<text x="12" y="%d" fill="%s">message %d: %s</text>`+"\n", 20+legend*18, c, m.N, xmlEscape(strings.Join(sitesOn, " -> ")))
			legend++
		}
	}
	for _, name := range sites {
		p := pos[strings.ToLower(name)]
		fill := "#eef"
		if g.IsHub(name) {
			fill = "#fd8"
		}
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="34" fill="%s" stroke="#333"/>`+"\n", p[0], p[1], fill)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", p[0], p[1]+4, xmlEscape(name))
	}
	fmt.Fprintf(&b, `<text x="12" y="%d" fill="#555">yellow: hub site; numbers: site-link costs</text>`+"\n", h-12)
	b.WriteString("</svg>\n")
	return os.WriteFile(file, []byte(b.String()), 0o644)
}

// sitesOf reads the site path out of a ROUTE detail ("... london -(10)-> paris -(10)-> berlin; ...").
func sitesOf(detail string, pos map[string][2]float64) []string {
	i := strings.Index(detail, " -(")
	if i < 0 {
		return nil
	}
	start := strings.LastIndex(detail[:i], " ") + 1
	seg := detail[start:]
	if j := strings.IndexByte(seg, ';'); j >= 0 {
		seg = seg[:j]
	}
	var out []string
	for _, part := range strings.Split(seg, "->") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(f[len(f)-1], ";"))
		if strings.HasPrefix(name, "-(") && len(f) > 1 {
			name = strings.ToLower(f[len(f)-2])
		}
		if _, ok := pos[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// tailOfAny says whether p is the end of one of paths (the same route seen from a
// later Hub on it).
func tailOfAny(p []string, paths [][]string) bool {
	for _, q := range paths {
		if len(q) >= len(p) && strings.Join(q[len(q)-len(p):], ">") == strings.Join(p, ">") {
			return true
		}
	}
	return false
}
