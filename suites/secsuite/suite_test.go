package secsuite_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	_ "github.com/mailflow/mailflow/suites/secsuite"
)

func TestSec(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Security battery")
}
