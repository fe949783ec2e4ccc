package resolve

import (
	"errors"
	"fmt"
)

var (
	// ErrNXDomain means the name does not exist: a permanent failure (DNS-006).
	ErrNXDomain = errors.New("no such domain")
	// ErrNoData means the name exists but has no records of the asked type.
	ErrNoData = errors.New("no records of that type")
)

// TempError is a failure that may go away on retry: SERVFAIL, REFUSED, a timeout or a
// network error (DNS-007, FILTER-008).
type TempError struct {
	Name   string
	Reason string
	err    error
}

func (e *TempError) Error() string {
	return fmt.Sprintf("temporary DNS failure for %s: %s", e.Name, e.Reason)
}

// Temporary reports true: the caller should keep the message queued.
func (e *TempError) Temporary() bool { return true }

// Unwrap exposes the network or context error behind the failure, if any.
func (e *TempError) Unwrap() error { return e.err }

// IsTemporary reports whether err, or an error it wraps, is a TempError.
func IsTemporary(err error) bool {
	var te *TempError
	return errors.As(err, &te) && te.Temporary()
}
