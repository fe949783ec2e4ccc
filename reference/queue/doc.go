// Package queue holds accepted messages on stable storage and retries their delivery.
// It knows nothing of SMTP: a Deliverer reports one Outcome per recipient and the queue
// keeps, retries or fails recipients accordingly. The spool is a journal (package
// journal): Put returns only after the record holding the message's envelope and data
// is fsynced, an fsync that messages accepted at the same moment share, so a 250 after
// DATA survives kill -9 (QUEUE-010). Serves QUEUE-001, QUEUE-002, SMART-003, RELAY-002.
package queue
