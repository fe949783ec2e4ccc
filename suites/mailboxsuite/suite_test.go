package mailboxsuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/mailboxsuite"
)

func TestMailbox(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Mailbox delivery")
}
