package clock

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestOffsetStepFiresDueTimersOnly(t *testing.T) {
	o := NewOffset(0)
	hour := o.After(time.Hour)
	day := o.After(24 * time.Hour)
	start := o.Now()
	o.Advance(2 * time.Hour)
	select {
	case at := <-hour:
		if at.Sub(start) < 2*time.Hour {
			t.Errorf("fired at %v after start, want at least 2h", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a 1h timer did not fire after a 2h step")
	}
	select {
	case <-day:
		t.Fatal("a 24h timer fired after a 2h step")
	default:
	}
	if o.Pending() != 1 {
		t.Errorf("pending = %d, want 1", o.Pending())
	}
	if got := o.Now().Sub(start); got < 2*time.Hour || got > 2*time.Hour+time.Minute {
		t.Errorf("the clock moved %v, want 2h and a little", got)
	}
}

func TestOffsetTimersAlsoFireOnWallTime(t *testing.T) {
	o := NewOffset(time.Hour)
	select {
	case <-o.After(20 * time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("a 20ms timer did not fire on wall time")
	}
	if o.Pending() != 0 {
		t.Errorf("pending = %d after the timer fired", o.Pending())
	}
}

func TestControlHandlerSteps(t *testing.T) {
	o := NewOffset(0)
	srv := httptest.NewServer(ControlHandler(o))
	defer srv.Close()
	ch := o.After(30 * time.Minute)
	st, err := Step(context.Background(), srv.Client(), srv.URL, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st.Elapsed != time.Hour {
		t.Errorf("elapsed = %v, want 1h", st.Elapsed)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("a 30m timer did not fire after a 1h step over HTTP")
	}
	resp, err := srv.Client().Post(srv.URL+"/advance?by=soon", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad duration got %s, want 400", resp.Status)
	}
}
