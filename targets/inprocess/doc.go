// Package inprocess runs a scenario's whole world inside the calling process: fake DNS,
// the LDAP directory, the fake Internet hosts and every reference server, each on its
// own loopback address. It is the default conformance target and what `mailflow serve`
// starts. Addresses in the scenario are remapped into a /24 of 127.0.0.0/8 claimed per
// topology (further ones when an organisation outgrows it), so parallel suites never
// collide; names, not addresses, are what suites use.
package inprocess
