// Package fixtureset starts the fixtures of a scenario's Internet (fake DNS, fake hosts)
// and its directory at addresses a target chooses, rewriting the scenario's loopback
// addresses into the target's own address plan. The in-process and Docker targets share
// it, so a scenario means the same world on both.
package fixtureset

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/scenario"
)

// Allocator hands out the target's addresses.
type Allocator interface {
	// Remap gives a scenario address its stand-in, stable per address.
	Remap(a netip.Addr) (netip.Addr, error)
	// Next gives a fresh address.
	Next() (netip.Addr, error)
}

// Zone is the scenario's DNS data rewritten into the target's addresses.
type Zone struct {
	Records []string
	// Addr maps a lower-case host name without the trailing dot to its address.
	Addr map[string]netip.Addr
}

// Add appends an A record for name and remembers it.
func (z *Zone) Add(name string, a netip.Addr) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	z.Records = append(z.Records, fmt.Sprintf("%s. 60 IN A %s", name, a))
	z.Addr[name] = a
}

// Rewrite moves the scenario's loopback addresses (A records and IP-literal smart hosts,
// which it rewrites in place in s) into alloc's plan and adds the DNSBL zones.
func Rewrite(s *scenario.Scenario, alloc Allocator) (*Zone, error) {
	z := &Zone{Addr: map[string]netip.Addr{}}
	for _, line := range s.Internet.DNS {
		rr, err := dns.NewRR(line)
		if err != nil {
			return nil, fmt.Errorf("dns record %q: %w", line, err)
		}
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			if ip.IsLoopback() {
				r, err := alloc.Remap(ip)
				if err != nil {
					return nil, err
				}
				a.A = net.IP(r.AsSlice())
				z.Addr[strings.TrimSuffix(strings.ToLower(a.Hdr.Name), ".")] = r
			}
		}
		z.Records = append(z.Records, rr.String())
	}
	// Loopback IP literals in smart-host lists move with their hosts.
	for i := range s.Org.SendConnectors {
		hs := s.Org.SendConnectors[i].SmartHosts
		for j, h := range hs {
			host, port, err := net.SplitHostPort(h)
			if err != nil {
				host, port = h, ""
			}
			bracketed := strings.HasPrefix(host, "[")
			ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
			if err != nil || !ip.IsLoopback() {
				continue
			}
			r, err := alloc.Remap(ip)
			if err != nil {
				return nil, err
			}
			nh := r.String()
			if bracketed {
				nh = "[" + nh + "]"
			}
			if port != "" {
				nh = net.JoinHostPort(strings.Trim(nh, "[]"), port)
			}
			hs[j] = nh
		}
	}
	for _, zone := range s.Internet.DNSBL {
		rrs, err := dnsfake.DNSBLRecords(zone.Zone, zone.Listed)
		if err != nil {
			return nil, fmt.Errorf("dnsbl %s: %w", zone.Zone, err)
		}
		z.Records = append(z.Records, rrs...)
	}
	return z, nil
}

// StartHosts starts every fake Internet host of the scenario on port, at its
// (remapped) address, its A record's address or a fresh one, adding the A records the
// zone lacks. Hosts join fleet as they start, so the caller's teardown closes them.
func StartHosts(ctx context.Context, s *scenario.Scenario, alloc Allocator, z *Zone, port int, fleet *internet.Fleet, extra ...internet.Option) error {
	ca := testca.Shared()
	for i := range s.Internet.Hosts {
		h := &s.Internet.Hosts[i]
		name := strings.ToLower(strings.TrimSuffix(h.Name, "."))
		var ip netip.Addr
		var err error
		if h.Address != "" {
			orig, err := netip.ParseAddr(h.Address)
			if err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			if ip, err = alloc.Remap(orig); err != nil {
				return err
			}
		} else if a, ok := z.Addr[name]; ok {
			ip = a
		} else if ip, err = alloc.Next(); err != nil {
			return err
		}
		if _, ok := z.Addr[name]; !ok {
			z.Add(name, ip)
		}
		opts := append([]internet.Option{internet.WithBehaviour(h.Behaviour), internet.WithMaxRecipients(h.MaxRecipients),
			internet.WithEHLOExtensions(h.Extensions...)}, extra...)
		for rc, b := range h.Recipients {
			opts = append(opts, internet.WithRecipientBehaviour(rc, b))
		}
		if h.TLS {
			tc, err := ca.ServerConfig(name, ip.String())
			if err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			opts = append(opts, internet.WithTLS(tc))
		}
		if h.Auth != nil {
			opts = append(opts, internet.WithAuth(h.Auth.Username, h.Auth.Password))
		}
		host, err := internet.Start(ctx, name, net.JoinHostPort(ip.String(), fmt.Sprint(port)), opts...)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		fleet.Add(host)
	}
	return nil
}

// StartDNS serves the zone at addr with the scenario's programmed failures.
func StartDNS(ctx context.Context, s *scenario.Scenario, addr string, z *Zone) (*dnsfake.Server, error) {
	d, err := dnsfake.Start(ctx, addr, dnsfake.WithRecords(z.Records...))
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	for _, f := range s.Internet.DNSFailures {
		m, err := dnsfake.ParseMode(f.Mode)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("dns failure %s: %w", f.Name, err)
		}
		d.SetFailure(f.Name, m)
	}
	return d, nil
}

// Seed is the seed a target gives a server of the scenario for its random choices
// (DNS-003): fixed per server name, so both targets make the same choices run after run
// and a verdict does not depend on the draw.
func Seed(server string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(server)))
	if s := h.Sum64(); s != 0 {
		return s
	}
	return 1
}
