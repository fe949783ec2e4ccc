package smarthostsuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/smarthostsuite"
)

func TestSmartHost(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Smart-host forwarding")
}
