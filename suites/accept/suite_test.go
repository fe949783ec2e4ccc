package accept_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/accept"
)

func TestAccept(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Accepted domains and recipient filtering")
}
