// Package store is the mailbox store of a Mailbox server: one Maildir per mailbox under a
// root directory, ROOT/<lower-case primary address>/{tmp,new,cur}. Delivery follows the
// Maildir protocol (write and fsync in tmp, rename into new, fsync new) so a message the
// store reports delivered survives a crash, puts exactly one Return-Path on top of the
// message (MBX-002) and leaves every other byte as received (MBX-001). A second copy of a
// message whose Message-ID the mailbox already holds is suppressed, as Exchange's store
// does (DUPLICATEDELIVER, CAT-003).
package store
