package edge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/reference/transport"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Config is what an Edge Transport server needs; the org builder fills it from a
// scenario.
type Config struct {
	Scenario *scenario.Scenario
	Server   *scenario.Server
	// Addr is the server's own address; listeners bind it and outgoing mail leaves from it.
	Addr netip.Addr
	// PortMap rewrites the port of receive connector bindings (in-process, privileged
	// ports move up by 2500 so no root is needed: 25 -> 2525, 587 -> 3087); nil keeps them.
	PortMap func(port int) int
	// OutPort is the port of next hops that name none.
	OutPort int
	// Hubs are "ip:port" of the Hub servers of the subscribed site.
	Hubs     []string
	SpoolDir string
	// Directory is the recipient directory (EdgeSync's replica) the receive connectors
	// consult for recipient filtering and AUTH.
	Directory transport.Directory
	Resolver  smtpout.Resolver
	Trace     trace.Recorder
	Clock     clock.Clock
	// ServerTLS is offered on connectors with tls: true; ClientTLS verifies next hops.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Logger    *slog.Logger
	// OrgRanges are the addresses the organisation's Hubs send from. An Edge with them
	// gets the implicit EdgeSync connector on port 25 that lets those Hubs send
	// outbound Internet mail through it (ROUTE-015), over STARTTLS.
	OrgRanges []string
	// Seed makes the first choice among equal-preference MXs repeatable (DNS-003); 0
	// keeps it random.
	Seed uint64
	// Clamd is the ClamAV daemon the antivirus agent scans with, when the scenario
	// enables it on this Edge (transport.Config.Clamd).
	Clamd string
	// Spamd is the spamd the content filter asks when the scenario names none
	// (transport.Config.Spamd).
	Spamd string
}

// Server is a running Edge Transport server: a transport server routing as an Edge.
type Server struct {
	*transport.Server
}

// Start binds every receive connector of the server and starts the queue.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	t, err := transport.Start(ctx, cfg.transport())
	if err != nil {
		return nil, err
	}
	return &Server{t}, nil
}

// transport is the transport server's configuration for an Edge: the scenario's
// receive connectors and the Edge's own routing (no Router, Connectors, Shadow or
// ShadowRanges: those are a Hub's).
func (cfg Config) transport() transport.Config {
	return transport.Config{
		Scenario: cfg.Scenario, Server: cfg.Server, Addr: cfg.Addr, PortMap: cfg.PortMap, OutPort: cfg.OutPort,
		Hubs: cfg.Hubs, SpoolDir: cfg.SpoolDir, Directory: cfg.Directory, Resolver: cfg.Resolver,
		Trace: cfg.Trace, Clock: cfg.Clock, ServerTLS: cfg.ServerTLS, ClientTLS: cfg.ClientTLS,
		Logger: cfg.Logger, OrgRanges: cfg.OrgRanges, Seed: cfg.Seed, Clamd: cfg.Clamd,
		Spamd: cfg.Spamd,
	}
}
