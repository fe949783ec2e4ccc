package clock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ControlState is what the control endpoint answers: the clock's time and how far it
// has been stepped in all.
type ControlState struct {
	Now     time.Time     `json:"now"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Pending int           `json:"pending"`
}

// ControlHandler lets a harness step o over HTTP: GET / answers the state,
// POST /advance?by=DURATION steps the clock and answers the new state.
func ControlHandler(o *Offset) http.Handler {
	mux := http.NewServeMux()
	state := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ControlState{Now: o.Now(), Elapsed: o.Elapsed(), Pending: o.Pending()})
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { state(w) })
	mux.HandleFunc("POST /advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("by"))
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("advance: want ?by=DURATION (a Go duration, not negative): %q", r.URL.Query().Get("by")), http.StatusBadRequest)
			return
		}
		o.Advance(d)
		state(w)
	})
	return mux
}

// State asks the control endpoint at base for its clock's state.
func State(ctx context.Context, client *http.Client, base string) (ControlState, error) {
	return call(ctx, client, http.MethodGet, base, base+"/")
}

// Step asks the control endpoint at base (http://host:port) to step its clock by d.
func Step(ctx context.Context, client *http.Client, base string, d time.Duration) (ControlState, error) {
	return call(ctx, client, http.MethodPost, base, base+"/advance?by="+url.QueryEscape(d.String()))
}

func call(ctx context.Context, client *http.Client, method, base, u string) (ControlState, error) {
	var st ControlState
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return st, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return st, fmt.Errorf("clock control %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return st, fmt.Errorf("clock control %s: %s: %s", base, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("clock control %s: %w", base, err)
	}
	if st.Now.IsZero() {
		return st, errors.New("clock control " + base + ": no time in the answer")
	}
	return st, nil
}
