package dsnsuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/dsnsuite"
)

func TestDSN(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Delivery status notifications")
}
