package hub

import (
	"slices"
	"testing"

	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/queue"
)

func TestResolvedRecipientKeepsDSNParameters(t *testing.T) {
	tests := []struct {
		name       string
		orig       *queue.Recipient
		res        categorizer.Result
		wantORCPT  string
		wantNotify []string
	}{
		{"unchanged", &queue.Recipient{Addr: "a@c.test", Notify: []string{"SUCCESS"}},
			categorizer.Result{Original: "a@c.test", Address: "a@c.test"}, "", []string{"SUCCESS"}},
		{"proxy address rewritten", &queue.Recipient{Addr: "al@c.test"},
			categorizer.Result{Original: "al@c.test", Address: "alice@c.test"}, "al@c.test", nil},
		{"sender's ORCPT wins", &queue.Recipient{Addr: "al@c.test", ORCPT: "old@c.test"},
			categorizer.Result{Original: "al@c.test", Address: "alice@c.test"}, "old@c.test", nil},
		{"forward keeps NOTIFY", &queue.Recipient{Addr: "a@c.test", Notify: []string{"SUCCESS", "FAILURE"}},
			categorizer.Result{Original: "a@c.test", Address: "b@c.test", ForwardedFrom: []string{"a@c.test"}}, "a@c.test", []string{"SUCCESS", "FAILURE"}},
		{"member drops SUCCESS", &queue.Recipient{Addr: "g@c.test", Notify: []string{"SUCCESS", "FAILURE"}},
			categorizer.Result{Original: "g@c.test", Address: "m@c.test", ExpandedFrom: []string{"g@c.test"}}, "g@c.test", []string{"FAILURE"}},
		{"member of SUCCESS only hears nothing", &queue.Recipient{Addr: "g@c.test", Notify: []string{"SUCCESS"}},
			categorizer.Result{Original: "g@c.test", Address: "m@c.test", ExpandedFrom: []string{"g@c.test"}}, "g@c.test", []string{"NEVER"}},
		{"member without NOTIFY", &queue.Recipient{Addr: "g@c.test"},
			categorizer.Result{Original: "g@c.test", Address: "m@c.test", ExpandedFrom: []string{"g@c.test"}}, "g@c.test", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolvedRecipient(tt.orig, tt.res)
			if got.Addr != tt.res.Address || got.ORCPT != tt.wantORCPT || !slices.Equal(got.Notify, tt.wantNotify) {
				t.Errorf("got %+v, want addr %s ORCPT %q NOTIFY %v", got, tt.res.Address, tt.wantORCPT, tt.wantNotify)
			}
		})
	}
}
