package fixtureset

import (
	"context"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/dockernet"
)

// OnNetwork prepares a Docker target's world: the scenario's client ranges and loopback
// addresses move onto the network (s is rewritten in place) and the fake Internet hosts
// start there on port 25, joining fleet, with extra options.
func OnNetwork(ctx context.Context, s *scenario.Scenario, nw *dockernet.Net, fleet *internet.Fleet, extra ...internet.Option) (*Zone, error) {
	if err := nw.RemapClientRanges(s); err != nil {
		return nil, err
	}
	z, err := Rewrite(s, nw)
	if err != nil {
		return nil, err
	}
	if err := StartHosts(ctx, s, nw, z, 25, fleet, extra...); err != nil {
		return nil, err
	}
	return z, nil
}
