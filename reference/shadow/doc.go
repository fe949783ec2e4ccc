// Package shadow is shadow redundancy (EX-SHADOW, QUEUE-012). A Hub that relays a
// message to another transport server of the organisation (the primary) keeps a shadow
// copy until the primary has moved the message on, and resubmits the copy when the
// primary fails first: it stops answering for longer than the heartbeat allows, or it
// comes back with an empty queue.
//
// The shadow learns the primary's progress by asking it. A primary advertises XSHADOW
// after EHLO and answers "XQDISCARD id ..." (the queue IDs it gave in its 250 replies)
// with its spool's incarnation, a random ID made with the spool, and which of the IDs
// it no longer holds. A changed incarnation is a primary that lost its spool. The
// question is asked on a connection of its own before STARTTLS (the reference answers
// commands of its own only there); it carries queue IDs, never message content.
//
// Shadow copies live in a directory of their own beside the spool, fsynced like queued
// mail, so they survive the shadow's own restart.
package shadow
