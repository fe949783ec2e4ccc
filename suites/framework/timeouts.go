package framework

import (
	"time"

	"github.com/onsi/gomega"
)

func init() {
	// Delivery crosses real networks on container and MTA targets (a TLS hand-off
	// between containers, an MTA's queue manager waking up); in-process it takes
	// milliseconds, so the longer bound only delays the report of a real failure.
	gomega.SetDefaultEventuallyTimeout(15 * time.Second)
}
