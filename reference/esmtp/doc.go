// Package esmtp is the SMTP protocol loop every receiving server of the reference runs
// (the Edge and Hub receive connectors in smtpd, the Mailbox server): it reads command
// lines and message data, keeps the one copy of the session's state (HELO name, TLS,
// AUTH identity, and the envelope: sender, recipients with NOTIFY and ORCPT), and
// writes every reply. What a server decides — who may send, which recipients exist,
// where an accepted message goes — it asks of a Session its Backend returns.
//
// It owns the loop rather than wrapping go-smtp's server because the reference is the
// strictest server the matrix compares against, and several of its answers are ones
// go-smtp's server does not give and cannot be told to: DATA ends only at
// <CRLF>.<CRLF> and a message holding a bare CR or LF is refused (SEC-001, SEC-002),
// a command line with a bare CR or LF or a NUL is one refused command (SEC-006), input
// pipelined behind STARTTLS is discarded and a failed handshake ends the session
// (SEC-003, SEC-008), commands out of sequence get 503 (SMTP-003, SMTP-004, SMTP-005,
// SEC-007), a line that is too long gets 500 5.5.2 and the session goes on, and too
// many errors get 421 4.7.0 before the close (SEC-009). go-smtp's types for replies
// (SMTPError) and its client are still used.
//
// Serves SMTP-001, SMTP-002, SMTP-003, SMTP-004, SMTP-005, SMTP-006, SMTP-007, SMTP-008,
// SMTP-009, SMTP-010, SMTP-012, SMTP-013, SMTP-014, SMTP-015, SMTP-016, SMTP-017,
// SMTP-019, SMTP-020, TRACE-003, TRACE-004, SEC-001, SEC-003, SEC-005, SEC-006,
// SEC-007, SEC-008, SEC-009.
package esmtp
