package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/internal/compose"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/inprocess"
)

// outboxFolder is the folder a mail client places a message in for the store to send.
const outboxFolder = "Outbox"

// dialIMAP logs in as addr at ep over STARTTLS, trusting the test CA; on hears what
// the server says unasked.
func dialIMAP(ep string, r *scenario.Recipient, on *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	c, err := imapclient.DialStartTLS(ep, &imapclient.Options{TLSConfig: testca.Shared().ClientConfig(""), UnilateralDataHandler: on})
	if err != nil {
		return nil, fmt.Errorf("IMAP STARTTLS to %s: %w", ep, err)
	}
	if err := c.Login(r.Mail, r.Password).Wait(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("IMAP LOGIN as %s at %s: %w", r.Mail, ep, err)
	}
	return c, nil
}

// imapEndpoint is where addr's mail client logs in: via when it is a Client Access
// server, else addr's own Mailbox server.
func imapEndpoint(topo *inprocess.Topology, s *scenario.Scenario, via, addr string) (string, error) {
	if srv, ok := s.Server(via); ok && srv.Role == scenario.RoleClientAccess {
		return topo.ClientAccessEndpoint(via)
	}
	return topo.IMAPEndpoint(addr)
}

// submitOutbox is store submission (MBX-006): the sender's mail client logs in at via
// and places the message in its Outbox; the Mailbox server does the rest.
func submitOutbox(topo *inprocess.Topology, s *scenario.Scenario, m scenario.Message, rm *reproMessage) {
	reject := func(stage string, err error) {
		r := smtpReply{Text: err.Error()}
		rm.refusal, rm.Rejected = &r, stage+": "+err.Error()
	}
	r, ok := s.Recipient(m.From)
	if !ok {
		// The scenario's validation requires a sender with a mailbox and a password.
		reject("login", fmt.Errorf("%s is no recipient of the scenario", m.From))
		return
	}
	ep, err := imapEndpoint(topo, s, m.Via, m.From)
	if err != nil {
		reject("login", err)
		return
	}
	c, err := dialIMAP(ep, r, nil)
	if err != nil {
		reject("login", err)
		return
	}
	defer func() {
		_ = c.Logout().Wait()
		_ = c.Close()
	}()
	data, err := compose.Message(m, rm.HeaderID)
	if err != nil {
		reject("APPEND", err)
		return
	}
	cmd := c.Append(outboxFolder, int64(len(data)), nil)
	if _, err := cmd.Write(data); err != nil {
		reject("APPEND", err)
		return
	}
	if err := cmd.Close(); err != nil {
		reject("APPEND", err)
		return
	}
	if _, err := cmd.Wait(); err != nil {
		reject("APPEND", err)
		return
	}
	rm.Outbox = fmt.Sprintf("APPEND %s at %s (%s): OK", outboxFolder, m.Via, ep)
}

// idler is one recipient's mail client in IDLE on its INBOX for the whole run: what it
// heard is what the user would have seen pop up.
type idler struct {
	addr, at string
	c        *imapclient.Client
	cmd      *imapclient.IdleCommand
	exists   atomic.Uint32
	since    uint32 // INBOX's count when the client selected it
}

// startIdle logs addr's mail client in at its Mailbox server, selects INBOX and
// idles (MBX-012).
func startIdle(topo *inprocess.Topology, s *scenario.Scenario, addr string) (*idler, error) {
	r, ok := s.Recipient(addr)
	if !ok {
		return nil, fmt.Errorf("idle: %s is no recipient of the scenario", addr)
	}
	ep, err := topo.IMAPEndpoint(addr)
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	id := &idler{addr: addr, at: r.Mailbox}
	c, err := dialIMAP(ep, r, &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			id.exists.Store(*d.NumMessages)
		}
	}})
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("idle: SELECT INBOX as %s: %w", addr, err)
	}
	id.since = sel.NumMessages
	id.exists.Store(sel.NumMessages)
	if id.cmd, err = c.Idle(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("idle: IDLE as %s: %w", addr, err)
	}
	id.c = c
	return id, nil
}

// heard is what the client was told while idling.
func (id *idler) heard() string {
	n := id.exists.Load()
	if n == id.since {
		return fmt.Sprintf("idle %s at %s: nothing new (INBOX still %d)", id.addr, id.at, n)
	}
	return fmt.Sprintf("idle %s at %s: * %d EXISTS while in IDLE (INBOX was %d)", id.addr, id.at, n, id.since)
}

// stop ends IDLE with DONE and logs out.
func (id *idler) stop() {
	done := make(chan struct{})
	go func() {
		_ = id.cmd.Close()
		_ = id.cmd.Wait()
		_ = id.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	_ = id.c.Close()
}

// idlers are the mail clients the messages' idle: lists keep in IDLE, one per
// recipient, started before the message that names it first is sent.
type idlers struct {
	topo *inprocess.Topology
	s    *scenario.Scenario
	by   map[string]*idler
	// order is by first mention, for a stable print.
	order []string
}

func (is *idlers) start(addrs []string) error {
	for _, a := range addrs {
		k := strings.ToLower(a)
		if _, ok := is.by[k]; ok {
			continue
		}
		id, err := startIdle(is.topo, is.s, a)
		if err != nil {
			return err
		}
		is.by[k] = id
		is.order = append(is.order, k)
	}
	return nil
}

// heard is each message's idle: recipients' clients, as they stand.
func (is *idlers) heard(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if id, ok := is.by[strings.ToLower(a)]; ok {
			out = append(out, id.heard())
		}
	}
	return out
}

func (is *idlers) stop() {
	for _, k := range is.order {
		is.by[k].stop()
	}
}
