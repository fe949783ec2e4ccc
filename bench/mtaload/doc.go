// Package mtaload measures a mail transfer agent's queue from the outside, the same way
// for the reference Edge and for any other MTA: a load of messages submitted over SMTP
// by concurrent clients, a sink the MTA relays them to, and the times in between (the
// 250 after DATA, the arrival at the sink). It also reads a process tree's resident
// memory from /proc. It knows nothing of how the MTA queues; `mailflow bench` puts the
// pieces together.
package mtaload
