package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/internal/compose"
	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/trace"
)

// reproMessage is what happened to one message of the scenario.
type reproMessage struct {
	N        int      `json:"n"`
	From     string   `json:"from"`
	To       []string `json:"to"`
	Via      string   `json:"via"`
	HeaderID string   `json:"message_id"`
	// RCPT is each recipient's answer at RCPT, in the order given.
	RCPT []reproRcpt `json:"rcpt"`
	// Data is the answer to the message's data; nil when no recipient was accepted.
	Data *smtpReply `json:"data,omitempty"`
	// Rejected is the refusal that stopped the whole submission (connection, EHLO,
	// MAIL or the data); "" when the message was taken.
	Rejected string     `json:"rejected,omitempty"`
	refusal  *smtpReply // Rejected as a reply, for expect: rejected
	// Outbox is the sender's mail client placing the message in its Outbox (submit:
	// outbox), as the server answered.
	Outbox string `json:"outbox,omitempty"`
	// Idle is what each of the message's idle: recipients' mail clients heard while
	// in IDLE, as the run ended.
	Idle  []string          `json:"idle,omitempty"`
	Paths map[string]string `json:"paths"`
	// Held are the recipients whose copy still waits in a queue: the hops it took and
	// the reply to its last attempt.
	Held   map[string]string `json:"held,omitempty"`
	Routes []string          `json:"routes"`
	// NDRs are the notifications the organisation sent about the message; their own
	// routes and events are theirs, not the message's.
	NDRs   []reproNDR    `json:"ndrs,omitempty"`
	Events []trace.Event `json:"events"`
	Checks []reproCheck  `json:"checks"`
}

// smtpReply is a reply as the client read it: the basic code, the enhanced code when
// the server gave one, and the text.
type smtpReply struct {
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced,omitempty"`
	Text     string `json:"text"`
}

func (r smtpReply) String() string {
	if r.Code == 0 {
		return r.Text
	}
	if r.Enhanced == "" {
		return fmt.Sprintf("%d %s", r.Code, r.Text)
	}
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
}

// replyOf reads a reply out of what the SMTP client returned: an *smtp.SMTPError
// keeps its code and enhanced code; anything else (a refused connection) is text.
func replyOf(err error) smtpReply {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return smtpReply{Text: err.Error()}
	}
	r := smtpReply{Code: se.Code, Text: se.Message}
	if c := se.EnhancedCode; c != smtp.NoEnhancedCode && c != (smtp.EnhancedCode{}) {
		r.Enhanced = fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
	}
	return r
}

// reproRcpt is one recipient's RCPT: accepted, or refused with Reply.
type reproRcpt struct {
	To       string     `json:"to"`
	Accepted bool       `json:"accepted"`
	Reply    *smtpReply `json:"reply,omitempty"`
}

// reproNDR is one notification about the message: the server that made it, for which
// recipients, its own path, and what it says of each recipient when it was found
// where it was delivered.
type reproNDR struct {
	Server     string         `json:"server"`
	Action     string         `json:"action"`
	To         string         `json:"to"`
	Recipients []string       `json:"recipients"`
	Path       string         `json:"path,omitempty"`
	Routes     []string       `json:"routes,omitempty"`
	Report     []ndrRecipient `json:"report,omitempty"`
}

// ndrRecipient is one recipient block of a DSN as delivered.
type ndrRecipient struct {
	Final    string `json:"final_recipient"`
	Original string `json:"original_recipient,omitempty"`
	Action   string `json:"action"`
	Status   string `json:"status"`
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
	defer stopSharedFixtures()
	topo, err := inprocess.Start(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow repro:", err)
		return 1
	}
	defer topo.Stop(context.Background())

	msgs := make([]*reproMessage, len(s.Messages))
	for i, m := range s.Messages {
		msgs[i] = &reproMessage{N: i + 1, From: m.From, To: m.To, Via: m.Via, HeaderID: fmt.Sprintf("repro-%d@mailflow.invalid", i+1)}
	}
	idle := &idlers{topo: topo, s: s, by: map[string]*idler{}}
	steps, err := runTimeline(ctx, topo, s, msgs, idle)
	for i, rm := range msgs {
		rm.Idle = idle.heard(s.Messages[i].Idle)
	}
	idle.stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow repro:", err)
		return 1
	}
	events := topo.Trace().Events()
	failed := false
	for i, rm := range msgs {
		describe(rm, events, hostNames(topo))
		rm.NDRs = ndrReports(rm, s, delivered(topo, s, rm))
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
		out := map[string]any{"scenario": path, "messages": msgs, "ok": !failed}
		if len(s.Timeline) > 0 {
			out["timeline"] = steps
		}
		_ = enc.Encode(out)
	} else {
		if len(s.Timeline) > 0 {
			printTimeline(os.Stdout, steps, events)
		}
		printRepro(os.Stdout, msgs, steps[0].Time)
	}
	if failed {
		return 1
	}
	return 0
}

// submit sends one message through the server it names, as a client would: each
// recipient gets its own RCPT, a refused one is recorded and the rest go on, and the
// data is sent when at least one was accepted.
func submit(ctx context.Context, topo *inprocess.Topology, m scenario.Message, rm *reproMessage) {
	// What an agent did in the session, before the message had an ID (a refusal at
	// MAIL or RCPT), is the message's too: messages are sent one at a time.
	before := len(topo.Trace().Events())
	defer func() {
		for _, e := range topo.Trace().Events()[before:] {
			if e.Source == trace.SourceAgent && e.HeaderID == "" {
				rm.Events = append(rm.Events, e)
			}
		}
	}()
	reject := func(stage string, err error) {
		r := replyOf(err)
		rm.refusal, rm.Rejected = &r, stage+": "+r.String()
	}
	addr, err := topo.Endpoint(m.Via, "")
	if err != nil {
		// The scenario's validation allows only servers that have one.
		reject("connect", fmt.Errorf("via %s: %w", m.Via, err))
		return
	}
	var d net.Dialer
	if m.Client != "" {
		// A loopback address of the scenario's choice: the client a filter lists.
		ip, err := netip.ParseAddr(m.Client)
		if err != nil {
			reject("connect", fmt.Errorf("client %q: %w", m.Client, err))
			return
		}
		d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		reject("connect", err)
		return
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if err := c.Hello("repro.mailflow.invalid"); err != nil {
		reject("EHLO", err)
		return
	}
	if err := c.Mail(m.From, nil); err != nil {
		reject("MAIL", err)
		return
	}
	accepted := 0
	for _, to := range m.To {
		rc := reproRcpt{To: to, Accepted: true}
		if err := c.Rcpt(to, nil); err != nil {
			r := replyOf(err)
			rc.Accepted, rc.Reply = false, &r
		} else {
			accepted++
		}
		rm.RCPT = append(rm.RCPT, rc)
	}
	if accepted == 0 {
		// Nothing to send: a client ends the transaction (RFC 5321 §3.3).
		_ = c.Reset()
		_ = c.Quit()
		return
	}
	w, err := c.Data()
	if err != nil {
		reject("DATA", err)
		return
	}
	data, err := compose.Message(m, rm.HeaderID)
	if err != nil {
		_ = w.Close()
		reject("DATA", err)
		return
	}
	if _, err := w.Write(data); err != nil {
		reject("DATA", err)
		return
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		reject("DATA", err)
		return
	}
	r := replyOf(&smtp.SMTPError{Code: 250, Message: resp.StatusText})
	if f := strings.Fields(resp.StatusText); len(f) > 0 && strings.Count(f[0], ".") == 2 {
		// go-smtp hands a success reply back as text: the enhanced code is its first word.
		r.Enhanced, r.Text = f[0], strings.TrimSpace(strings.TrimPrefix(resp.StatusText, f[0]))
	}
	rm.Data = &r
	_ = c.Quit()
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

// copyTree is the message's copies as the trace links them (trace.Parents): each
// copy's chain of servers from the submission, and which copies are notifications.
type copyTree struct {
	parents map[trace.Copy]trace.Copy
	notes   map[trace.Copy]trace.Copy
	taken   map[string]bool // copy IDs some server of the organisation received or stored
}

func newCopyTree(events []trace.Event) copyTree {
	t := copyTree{parents: trace.Parents(events), notes: trace.Notifications(events), taken: map[string]bool{}}
	for _, e := range events {
		if e.Type == trace.Receive || e.Type == trace.Deliver {
			t.taken[e.MessageID] = true
		}
	}
	return t
}

// root is the first copy of c's lineage: the submission, or a notification.
func (t copyTree) root(c trace.Copy) trace.Copy { return trace.Lineage(t.parents, c)[0] }

// hops are the servers c's lineage went through, each once in a row.
func (t copyTree) hops(c trace.Copy) []string {
	var out []string
	for _, x := range trace.Lineage(t.parents, c) {
		out = appendOnce(out, x.Server)
	}
	return out
}

// describe fills in a message's paths, routing decisions and events from the trace.
// Each recipient's path is its own copy's lineage: a message split at a Hub is one
// copy per next hop, so a recipient's path has only the hops its copy took.
func describe(rm *reproMessage, all []trace.Event, hosts map[string]string) {
	// The tree is of the whole trace: a notification carries a Message-ID of its own
	// once it leaves the server that made it.
	t := newCopyTree(all)
	own := map[trace.Copy]bool{}
	for _, e := range all {
		if e.HeaderID == rm.HeaderID {
			own[trace.CopyOf(e)] = true
		}
	}
	var mine []trace.Event
	for _, e := range all {
		root := t.root(trace.CopyOf(e))
		if about, isNote := t.notes[root]; isNote && own[about] || !isNote && e.HeaderID == rm.HeaderID {
			mine = append(mine, e)
		}
	}
	ndrs := map[trace.Copy]*reproNDR{}
	var ndrOrder []trace.Copy
	type route struct{ key, line string }
	var routes []route
	ndrRoutes := map[trace.Copy][]route{}
	for _, e := range mine {
		c := trace.CopyOf(e)
		root := t.root(c)
		if _, isNote := t.notes[root]; isNote {
			n, ok := ndrs[root]
			if !ok {
				n = &reproNDR{Server: root.Server}
				ndrs[root] = n
				ndrOrder = append(ndrOrder, root)
			}
			if e.Type == trace.Route {
				ndrRoutes[root] = append(ndrRoutes[root], route{strings.Join(t.hops(c), ">") + "\x00" + e.Detail, fmt.Sprintf("%s: %s", e.Server, e.Detail)})
			}
			if end := pathEnd(e, t, hosts); end != "" {
				n.Path = strings.Join(append(t.hops(c), end), " -> ")
			}
			continue
		}
		rm.Events = append(rm.Events, e)
		if e.Type == trace.Route {
			routes = append(routes, route{strings.Join(t.hops(c), ">") + "\x00" + e.Detail, fmt.Sprintf("%s: %s", e.Server, e.Detail)})
		}
	}
	// Routes in the order of the copies' lineages, so a message split at a Hub lists
	// the same lines in every run.
	byLineage := func(rs []route) []string {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].key < rs[j].key })
		var out []string
		for _, r := range rs {
			// A message retried decides again at each attempt, the same way while
			// nothing changed: one line says it.
			if !slices.Contains(out, r.line) {
				out = append(out, r.line)
			}
		}
		return out
	}
	rm.Routes = byLineage(routes)
	for _, root := range ndrOrder {
		n := ndrs[root]
		for _, e := range mine {
			if e.Type == trace.DSN && (trace.Copy{Server: e.Server, ID: e.CopyID}) == root {
				n.Recipients, n.To = e.Recipients, e.Sender
				n.Action, _, _ = strings.Cut(e.Detail, " ")
			}
		}
		n.Routes = byLineage(ndrRoutes[root])
		rm.NDRs = append(rm.NDRs, *n)
	}
	// A recipient's path ends where its copy did: stored, sent out of the
	// organisation, or failed; the first of each, in that order, when copies differ.
	rm.Paths = map[string]string{}
	rank := map[string]int{}
	for _, e := range rm.Events {
		end := pathEnd(e, t, hosts)
		if end == "" {
			continue
		}
		r := map[trace.Type]int{trace.Deliver: 1, trace.Send: 2, trace.Fail: 3}[e.Type]
		for _, a := range e.Recipients {
			k := strings.ToLower(a)
			if have, ok := rank[k]; ok && have <= r {
				continue
			}
			hops := t.hops(trace.CopyOf(e))
			if e.Type == trace.Deliver {
				local, _, _ := strings.Cut(a, "@")
				hops, end = hops[:len(hops)-1], e.Server+":"+local
			}
			rank[k], rm.Paths[k] = r, strings.Join(append(hops, end), " -> ")
		}
	}
	// A copy that has not ended anywhere waits where it was last deferred (a server
	// down on its way, ROUTE-008's backoff).
	for _, e := range rm.Events {
		if e.Type != trace.Defer {
			continue
		}
		for _, a := range e.Recipients {
			k := strings.ToLower(a)
			if _, ended := rm.Paths[k]; ended {
				continue
			}
			if rm.Held == nil {
				rm.Held = map[string]string{}
			}
			rm.Held[k] = strings.Join(t.hops(trace.CopyOf(e)), " -> ") + "; last attempt: " + e.Reply
		}
	}
}

// pathEnd is where an event ends its recipients' path, or "" when it does not: a
// DELIVER (its server), a SEND to a host outside the organisation (no server of the
// organisation took the copy), a FAIL.
func pathEnd(e trace.Event, t copyTree, hosts map[string]string) string {
	switch e.Type {
	case trace.Deliver:
		return e.Server
	case trace.Fail:
		return "failed: " + e.Reply
	case trace.Send:
		if e.CopyID != "" && t.taken[e.CopyID] {
			return "" // a hop inside the organisation
		}
		host, _, err := net.SplitHostPort(e.NextHop)
		if err != nil {
			host = e.NextHop
		}
		if name, ok := hosts[host]; ok {
			host = name
		}
		return host + " (" + e.Connector + ")"
	}
	return ""
}

func appendOnce(list []string, s string) []string {
	if len(list) > 0 && list[len(list)-1] == s {
		return list
	}
	return append(list, s)
}

// delivered are the messages that reached a recipient the repro can read: the
// mailboxes of the organisation's recipients and every fake Internet host.
func delivered(topo *inprocess.Topology, s *scenario.Scenario, rm *reproMessage) [][]byte {
	var out [][]byte
	if rm.From != "" {
		out = append(out, topo.Mailbox(rm.From)...)
		if r, ok := s.Recipient(rm.From); ok && !strings.EqualFold(r.Mail, rm.From) {
			out = append(out, topo.Mailbox(r.Mail)...)
		}
	}
	for _, h := range topo.Hosts() {
		for _, m := range h.Messages() {
			out = append(out, m.Data)
		}
	}
	return out
}

// ndrReports adds to each of the message's notifications what it says of each
// recipient (Original-Recipient is the ORCPT, RFC 3461 §5.3.4), from the copy that
// was delivered: a DSN about this message returns its Message-ID, and names its
// server as Reporting-MTA.
func ndrReports(rm *reproMessage, s *scenario.Scenario, msgs [][]byte) []reproNDR {
	out := append([]reproNDR(nil), rm.NDRs...)
	for i := range out {
		n := &out[i]
		fqdn := n.Server
		if srv, ok := s.Server(n.Server); ok && srv.FQDN != "" {
			fqdn = srv.FQDN
		}
		for _, m := range msgs {
			p, err := dsn.Parse(m)
			if err != nil || len(p.Recipients) == 0 || !bytes.Contains(p.Original, []byte("<"+rm.HeaderID+">")) {
				continue
			}
			if mta := dsn.Field(p.PerMessage, "Reporting-MTA"); !strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(mta, "dns;")), fqdn) {
				continue
			}
			for _, r := range p.Recipients {
				n.Report = append(n.Report, ndrRecipient{Final: addrOf(dsn.Field(r, "Final-Recipient")), Original: addrOf(dsn.Field(r, "Original-Recipient")),
					Action: dsn.Field(r, "Action"), Status: dsn.Field(r, "Status")})
			}
			break
		}
	}
	return out
}

// addrOf is the address of a DSN address field ("rfc822; bob@b.test"), as written.
func addrOf(field string) string {
	_, a, ok := strings.Cut(field, ";")
	if !ok {
		return strings.TrimSpace(field)
	}
	return strings.TrimSpace(a)
}

// checks judges a message's `expect:`.
func checks(ex scenario.Expect, rm *reproMessage) []reproCheck {
	var out []reproCheck
	var actual []string
	for _, p := range rm.Paths {
		actual = append(actual, p)
	}
	sort.Strings(actual)
	var held []string
	for _, h := range rm.Held {
		held = append(held, "held: "+h)
	}
	sort.Strings(held)
	for i, want := range ex.Path {
		what := "path"
		if len(ex.Path) > 1 {
			what = fmt.Sprintf("path[%d]", i)
		}
		out = append(out, reproCheck{What: what, Expected: want, Actual: orWord(strings.Join(actual, "; "), orWord(strings.Join(held, "; "), "(no path)")), OK: slices.Contains(actual, want)})
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
		// Validation has parsed it already.
		want, _ := scenario.ParseReplyCode(ex.Rejected)
		var refusals []string
		ok := false
		for _, rc := range rm.RCPT {
			if rc.Reply != nil {
				refusals = append(refusals, rc.To+": "+rc.Reply.String())
				ok = ok || want.Matches(rc.Reply.Code, rc.Reply.Enhanced)
			}
		}
		if rm.refusal != nil {
			refusals = append(refusals, rm.Rejected)
			ok = ok || want.Matches(rm.refusal.Code, rm.refusal.Enhanced)
		}
		out = append(out, reproCheck{What: "rejected", Expected: want.String(), Actual: orWord(strings.Join(refusals, "; "), "(accepted)"), OK: ok})
	}
	return out
}

func orWord(s, word string) string {
	if s == "" {
		return word
	}
	return s
}

func printRepro(w io.Writer, msgs []*reproMessage, start time.Time) {
	for _, m := range msgs {
		fmt.Fprintf(w, "message %d: <%s> -> %s via %s (Message-ID <%s>)\n", m.N, m.From, strings.Join(m.To, ", "), m.Via, m.HeaderID)
		for _, rc := range m.RCPT {
			if rc.Accepted {
				fmt.Fprintf(w, "  RCPT %s: accepted\n", rc.To)
			} else {
				fmt.Fprintf(w, "  RCPT %s: %s\n", rc.To, rc.Reply)
			}
		}
		if m.Data != nil {
			fmt.Fprintf(w, "  DATA: %s\n", m.Data)
		}
		if m.Outbox != "" {
			fmt.Fprintf(w, "  %s\n", m.Outbox)
		}
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
		addrs = addrs[:0]
		for a := range m.Held {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			fmt.Fprintf(w, "  held %s: %s\n", a, m.Held[a])
		}
		for _, r := range m.Routes {
			fmt.Fprintf(w, "  route %s\n", r)
		}
		for _, h := range m.Idle {
			fmt.Fprintf(w, "  %s\n", h)
		}
		for _, n := range m.NDRs {
			fmt.Fprintf(w, "  ndr from %s (%s) to <%s> about %s\n", n.Server, n.Action, n.To, strings.Join(n.Recipients, ", "))
			for _, r := range n.Report {
				orcpt := "none"
				if r.Original != "" {
					orcpt = r.Original
				}
				fmt.Fprintf(w, "    recipient %s: %s %s, ORCPT %s\n", r.Final, r.Action, r.Status, orcpt)
			}
			if n.Path != "" {
				fmt.Fprintf(w, "    ndr path: %s\n", n.Path)
			} else {
				fmt.Fprintf(w, "    ndr path: not delivered yet (held in a queue)\n")
			}
			for _, r := range n.Routes {
				fmt.Fprintf(w, "    ndr route %s\n", r)
			}
		}
		fmt.Fprintln(w, "  events:")
		for _, e := range m.Events {
			fmt.Fprint(w, eventLine(e, start))
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
	b, err := sitesSVG(s, msgs)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// sitesSVG is writeSVG's drawing; with no messages, the sites and links alone.
func sitesSVG(s *scenario.Scenario, msgs []*reproMessage) ([]byte, error) {
	g, err := routing.NewGraph(s)
	if err != nil {
		return nil, err
	}
	sites := g.Sites()
	if len(sites) == 0 {
		return nil, errNoSites
	}
	const w, h = 720, 560
	r := 200.0
	if len(sites) == 1 {
		r = 0 // one site: in the middle
	}
	pos := map[string][2]float64{}
	for i, name := range sites {
		a := 2 * math.Pi * float64(i) / float64(len(sites))
		pos[strings.ToLower(name)] = [2]float64{w/2 + r*math.Cos(a), h/2 + r*math.Sin(a)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", w, h, w, h)
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
	// Routing group connectors are one way: a dashed arrow each, its name and cost
	// nearer the end it leaves from.
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#697"/></marker></defs>` + "\n")
	for _, c := range g.Connectors() {
		p, q := pos[strings.ToLower(c.From)], pos[strings.ToLower(c.To)]
		dx, dy := q[0]-p[0], q[1]-p[1]
		d := math.Hypot(dx, dy)
		if d == 0 {
			continue
		}
		// Offset sideways so the connectors of the two directions do not overlap, and
		// stop short of the node so the arrow head shows.
		ox, oy := -dy/d*6, dx/d*6
		x1, y1 := p[0]+dx/d*36+ox, p[1]+dy/d*36+oy
		x2, y2 := q[0]-dx/d*36+ox, q[1]-dy/d*36+oy
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#697" stroke-width="2" stroke-dasharray="6 3" marker-end="url(#arrow)"/>`+"\n", x1, y1, x2, y2)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#364" font-size="11" text-anchor="middle">%s (%d)</text>`+"\n", x1+(x2-x1)*0.3+ox*2, y1+(y2-y1)*0.3+oy*2, xmlEscape(c.Name), c.Cost)
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
		if g.IsRoutingGroup(name) {
			fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="68" height="68" rx="8" fill="#dfd" stroke="#333"/>`+"\n", p[0]-34, p[1]-34)
		} else {
			fmt.Fprintf(&b, `<circle cx="%.0f" cy="%.0f" r="34" fill="%s" stroke="#333"/>`+"\n", p[0], p[1], fill)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" font-weight="bold">%s</text>`+"\n", p[0], p[1]+4, xmlEscape(name))
	}
	key := "yellow: hub site; numbers: site-link costs"
	if len(g.Connectors()) > 0 {
		key += "; green squares: routing groups; dashed arrows: routing group connectors (cost)"
	}
	fmt.Fprintf(&b, `<text x="12" y="%d" fill="#555">%s</text>`+"\n", h-12, key)
	b.WriteString("</svg>\n")
	return []byte(b.String()), nil
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
		// A routing group connector's name may have spaces: "-(RGC A-B, 10)".
		if k := strings.Index(part, " -("); k >= 0 {
			part = part[:k]
		}
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
