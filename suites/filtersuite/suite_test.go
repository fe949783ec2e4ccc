package filtersuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	_ "github.com/mailflow/mailflow/suites/filtersuite"
)

func TestFilter(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Edge agents")
	// The spamd the content filter specs shared goes with the test process.
	if err := spamdaemon.StopShared(); err != nil {
		t.Error(err)
	}
}
