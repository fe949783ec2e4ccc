// Package directory is the reference's LDAP client (go-ldap). It finds a recipient by any
// of its proxy addresses, in any letter case, and returns the primary address, the kind
// of object, the server holding a mailbox (homeMDB -> database -> owning server), a
// group's members and a contact's external address. It tells "no such recipient"
// (ErrNotFound, a definite answer) apart from "the directory cannot answer"
// (*UnavailableError, temporary), and checks SMTP AUTH passwords by a simple bind as the
// recipient.
//
// It serves ACCEPT-002 and ACCEPT-007 (recipient lookup), CAT-001 (proxyAddresses and
// the primary address), CAT-002 (homeMDB), CAT-003 (group members), CAT-004 (contacts),
// CAT-006 (an unreachable directory is a temporary failure, never "unknown") and
// RELAY-005 (SMTP AUTH).
package directory
