package framework

import (
	"testing"

	"github.com/mailflow/mailflow/scenarios"
)

// TestSendConnector: the route a relayed recipient takes is the send connector whose
// address space names its domain, else the widest "*": RequireRelay asks for a smart
// host only where that connector has one.
func TestSendConnector(t *testing.T) {
	tests := []struct {
		file, server, domain, want string
	}{
		{"edge-relay.yaml", "EDGE1", "outsourced.test", "To Outsourcer"},
		{"edge-relay.yaml", "EDGE1", "fabrikam.test", "To Internet"},
		{"edge-relay.yaml", "EDGE1", "sub.outsourced.test", "To Internet"},
		{"edge-relay.yaml", "HUB1", "fabrikam.test", ""},
		{"edge-mx.yaml", "EDGE1", "fabrikam.test", "Out"},
		// A disabled connector is no route; "*.parent" covers the names below it.
		{"connectors.yaml", "HUB-LON", "fabrikam.test", "Fabrikam small"},
		{"connectors.yaml", "HUB-LON", "marketing.tailspin.test", "Tailspin any"},
	}
	for _, tt := range tests {
		s, err := scenarios.Load(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		w := &World{Scenario: s}
		got := ""
		if sc := w.sendConnector(tt.server, tt.domain); sc != nil {
			got = sc.Name
		}
		if got != tt.want {
			t.Errorf("%s: %s to %s goes by %q, want %q", tt.file, tt.server, tt.domain, got, tt.want)
		}
	}
}
