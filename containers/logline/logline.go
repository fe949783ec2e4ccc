// Package logline is the JSON-lines protocol a `mailflow server` process writes on
// stdout: its trace events (the message-tracking log), each copy a Mailbox server
// stored, one ready line, and the marks a harness asks for. A Docker target reads it from the container's log; anyone else can
// read it with jq.
package logline

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/mailflow/mailflow/trace"
)

// Line is one line of the log; exactly one field is set.
type Line struct {
	Trace  *trace.Event `json:"trace,omitempty"`
	Ready  *Ready       `json:"ready,omitempty"`
	Stored *Stored      `json:"stored,omitempty"`
	Mark   *Mark        `json:"mark,omitempty"`
}

// Mark is written when a harness asks for it (MarkHandler). A reader that has read a
// mark has read every line the server wrote before the request: the log is read
// asynchronously, and a harness asking "what has the server traced?" waits for its
// mark rather than guessing how far behind the log is.
type Mark struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// Stored is a message a Mailbox server put in a mailbox, as stored.
type Stored struct {
	Server  string `json:"server"`
	Mailbox string `json:"mailbox"`
	Data    []byte `json:"data"`
	// Flags are the Maildir flags the copy was stored with ("" for new).
	Flags string `json:"flags,omitempty"`
}

// Ready says the server listens.
type Ready struct {
	Server    string   `json:"server"`
	Role      string   `json:"role"`
	Listeners []string `json:"listeners"`
}

// ReadyMarker is a substring of the ready line, for log-based wait strategies.
const ReadyMarker = `{"ready":`

// Writer writes lines; it is a trace.Recorder, so a server's trace goes straight out.
type Writer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{enc: json.NewEncoder(w)} }

// Write writes one line.
func (w *Writer) Write(l Line) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(l)
}

// Record writes a trace event.
func (w *Writer) Record(e trace.Event) { w.Write(Line{Trace: &e}) }

// Parse reads one line; ok is false for anything that is not a protocol line (a
// panic's stack, a log line on the wrong stream).
func Parse(b []byte) (l Line, ok bool) {
	if err := json.Unmarshal(b, &l); err != nil {
		return Line{}, false
	}
	return l, l.Trace != nil || l.Ready != nil || l.Stored != nil || l.Mark != nil
}

// MarkHandler writes a mark line for server on w for each POST /mark?token=TOKEN, and
// answers once the line is written.
func MarkHandler(w *Writer, server string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mark", func(rw http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		if tok == "" {
			http.Error(rw, "mark: want ?token=TOKEN", http.StatusBadRequest)
			return
		}
		w.Write(Line{Mark: &Mark{Server: server, Token: tok}})
		rw.WriteHeader(http.StatusNoContent)
	})
	return mux
}
