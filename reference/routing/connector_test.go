package routing

import (
	"errors"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

func TestSelectConnector(t *testing.T) {
	off := false
	conns := []scenario.SendConnector{
		{Name: "star", AddressSpaces: []string{"*"}, Source: []string{"EDGE1"}, Cost: 1},
		{Name: "wild", AddressSpaces: []string{"*.contoso.test"}, Source: []string{"EDGE1"}, Cost: 5},
		{Name: "exact-b", AddressSpaces: []string{"marketing.contoso.test"}, Source: []string{"EDGE1"}, Cost: 3},
		{Name: "exact-a", AddressSpaces: []string{"marketing.contoso.test"}, Source: []string{"EDGE1"}, Cost: 3},
		{Name: "cheap", AddressSpaces: []string{"fabrikam.test"}, Source: []string{"EDGE1"}, Cost: 1},
		{Name: "dear", AddressSpaces: []string{"fabrikam.test"}, Source: []string{"EDGE1"}, Cost: 2},
		{Name: "disabled", AddressSpaces: []string{"tailspin.test"}, Source: []string{"EDGE1"}, Enabled: &off},
		{Name: "other-source", AddressSpaces: []string{"woodgrove.test"}, Source: []string{"EDGE2"}},
		{Name: "small", AddressSpaces: []string{"litware.test"}, Source: []string{"EDGE1"}, MaxMessageSize: 10},
	}
	tests := []struct {
		domain string
		size   int
		want   string
	}{
		{"marketing.contoso.test", 1, "exact-a"},
		{"sales.contoso.test", 1, "wild"},
		{"contoso.test", 1, "wild"},
		{"fabrikam.test", 1, "cheap"},
		{"FABRIKAM.TEST.", 1, "cheap"},
		{"tailspin.test", 1, "star"},
		{"woodgrove.test", 1, "star"},
		{"litware.test", 100, "star"},
		{"litware.test", 5, "small"},
	}
	for _, tc := range tests {
		got, err := SelectConnector(conns, "EDGE1", tc.domain, tc.size)
		if err != nil {
			t.Fatalf("%s: %v", tc.domain, err)
		}
		if got.Connector.Name != tc.want {
			t.Errorf("%s size %d: got %s (%s), want %s", tc.domain, tc.size, got.Connector.Name, got.Reason, tc.want)
		}
	}
	if _, err := SelectConnector(conns[1:2], "EDGE1", "fabrikam.test", 1); !errors.Is(err, ErrNoConnector) {
		t.Fatalf("unmatched domain: err = %v, want ErrNoConnector", err)
	}
}
