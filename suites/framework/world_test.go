package framework

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mailflow/mailflow/targets/dockernet"
)

func TestHasOther(t *testing.T) {
	stale := fmt.Errorf("dockernet: remove n1: %w (network n1 has active endpoints)", dockernet.ErrStaleEndpointCount)
	other := errors.New("terminate HUB-LON: container still running")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nothing", nil, false},
		{"only the engine's stale count", errors.Join(nil, stale, nil), false},
		{"the stale count alone", stale, false},
		{"another error beside it", errors.Join(other, stale), true},
		{"another error alone", errors.Join(other), true},
		{"nested joins", errors.Join(errors.Join(stale), errors.Join(other)), true},
	} {
		if got := hasOther(c.err, dockernet.ErrStaleEndpointCount); got != c.want {
			t.Errorf("%s: hasOther = %v, want %v", c.name, got, c.want)
		}
	}
}
