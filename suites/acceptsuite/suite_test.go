package acceptsuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/acceptsuite"
)

func TestAccept(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Accepted domains and recipient filtering")
}
