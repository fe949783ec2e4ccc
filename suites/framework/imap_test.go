package framework

import (
	"testing"

	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/targets/inprocess"
	"github.com/mailflow/mailflow/targets/mta"
)

// The MBX specs read mailboxes over IMAP and submit on port 587 on every target: a
// third-party MTA has a Dovecot behind it, in the scenarios with mailbox logins, and
// answers N/A (notApplicable) in the others, never a PASS without a look.
func TestWhichTargetsServeIMAP(t *testing.T) {
	for name, topo := range map[string]any{
		"inprocess": (*inprocess.Topology)(nil), "containers": (*containers.Topology)(nil), "mta": (*mta.Topology)(nil),
	} {
		if _, ok := topo.(imapTopology); !ok {
			t.Errorf("%s topology does not serve IMAP", name)
		}
		if _, ok := topo.(submissionTopology); !ok {
			t.Errorf("%s topology does not take submission", name)
		}
	}
}

// And MBX-011's: a Client Access server on the reference's targets only.
func TestWhichTargetsHaveClientAccess(t *testing.T) {
	for name, topo := range map[string]any{
		"inprocess": (*inprocess.Topology)(nil), "containers": (*containers.Topology)(nil), "mta": (*mta.Topology)(nil),
	} {
		_, ok := topo.(clientAccessTopology)
		if ok != (name != "mta") {
			t.Errorf("%s topology has Client Access: %v", name, ok)
		}
	}
}
