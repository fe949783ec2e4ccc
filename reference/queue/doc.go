// Package queue holds accepted messages on stable storage and retries their delivery.
// It knows nothing of SMTP: a Deliverer reports one Outcome per recipient and the queue
// keeps, retries or fails recipients accordingly. Put returns only after the message
// data, its envelope and the spool directory have been fsynced, so a 250 after DATA
// survives kill -9 (QUEUE-010). Serves QUEUE-001, QUEUE-002, SMART-003, RELAY-002.
package queue
