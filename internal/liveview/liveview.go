package liveview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mailflow/mailflow/trace"
)

// Source is the world the view shows, read anew for every request.
type Source interface {
	State() State
}

// State is what the view shows at one moment.
type State struct {
	Scenario  string        `json:"scenario"`
	Now       time.Time     `json:"now"`
	Listeners []Listener    `json:"listeners"`
	Queues    []Queue       `json:"queues"`
	Events    []trace.Event `json:"events"`
	Hosts     []Box         `json:"hosts"`
	Mailboxes []Box         `json:"mailboxes"`
}

// Listener is one address the world answers on.
type Listener struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Addr string `json:"addr"`
}

// Queue is a transport server's queues and how many messages each holds.
type Queue struct {
	Server string         `json:"server"`
	Counts map[string]int `json:"counts"`
}

// Box is what one fake Internet host or one mailbox holds.
type Box struct {
	Name     string    `json:"name"`
	Messages []Message `json:"messages"`
}

// Message is one message as a list shows it.
type Message struct {
	Time     time.Time `json:"time,omitzero"`
	MailFrom string    `json:"mail_from,omitempty"`
	RcptTo   []string  `json:"rcpt_to,omitempty"`
	From     string    `json:"from,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Size     int       `json:"size"`
	Flags    string    `json:"flags,omitempty"`
}

// Summary reads the From and Subject fields of a message's header; a header that does
// not parse leaves them empty.
func Summary(data []byte) (from, subject string) {
	r, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		return "", ""
	}
	defer r.Close()
	from = r.Header.Get("From")
	if s, err := r.Header.Subject(); err == nil {
		subject = s
	} else {
		subject = r.Header.Get("Subject")
	}
	return from, subject
}

// maxEvents is how many tracking events the page lists, the latest first.
const maxEvents = 300

// Handler serves the page at /, the state at /state.json and picture, an SVG drawing of
// the sites (may be nil), at /sites.svg.
func Handler(src Source, picture []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		st := src.State()
		// The drawing is the harness's own SVG, so it goes into the page as it is.
		page := view{State: st, Picture: template.HTML(picture), Events: latest(st.Events)}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := pageHTML.Execute(w, page); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /state.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(src.State()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /sites.svg", func(w http.ResponseWriter, r *http.Request) {
		if len(picture) == 0 {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write(picture)
	})
	return mux
}

// latest is the last maxEvents events, the latest first.
func latest(events []trace.Event) []trace.Event {
	if len(events) > maxEvents {
		events = events[len(events)-maxEvents:]
	}
	out := slices.Clone(events)
	slices.Reverse(out)
	return out
}

type view struct {
	State
	Picture template.HTML
	Events  []trace.Event
}

var pageHTML = template.Must(template.New("live").Funcs(template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05.000")
	},
	"join": strings.Join,
	"total": func(b []Box) int {
		n := 0
		for _, x := range b {
			n += len(x.Messages)
		}
		return n
	},
	"kb": func(n int) string { return fmt.Sprintf("%.1f KB", float64(n)/1024) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailflow: {{.Scenario}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 0.2em; }
h2 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
p.now { color: #666; margin: 0; }
table { border-collapse: collapse; margin-bottom: 0.6em; }
th, td { border: 1px solid #ccc; padding: 2px 7px; text-align: left; vertical-align: top; font-size: 0.9em; }
th { background: #f4f4f4; }
td.n { text-align: right; }
.ev-FAIL, .ev-EXPIRE { background: #f4b4b4; }
.ev-DEFER { background: #f8e0a0; }
.ev-DELIVER { background: #c8f0c8; }
.empty { color: #999; }
#grid { display: grid; grid-template-columns: minmax(20em, 1fr) minmax(20em, 1fr); gap: 0 2em; }
div.sites svg { max-width: 100%; height: auto; max-height: 26em; border: 1px solid #ddd; }
</style>
</head>
<body>
<main id="live">
<h1>{{.Scenario}}</h1>
<p class="now">as of {{clock .Now}} UTC; {{len .Events}} of {{len .State.Events}} tracking events shown</p>
<div id="grid">
<section>
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>Name</th><th>Kind</th><th>Address</th></tr></thead><tbody>
{{- range .Listeners}}
<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{.Addr}}</td></tr>
{{- end}}
</tbody></table>
<h2>Queues</h2>
<table id="queues"><thead><tr><th>Server</th><th>Queue</th><th>Messages</th></tr></thead><tbody>
{{- range $q := .Queues}}
{{- range $name, $n := $q.Counts}}
<tr><td>{{$q.Server}}</td><td>{{$name}}</td><td class="n">{{$n}}</td></tr>
{{- end}}
{{- end}}
</tbody></table>
</section>
<section>
{{- if .Picture}}
<h2>Sites</h2>
<div class="sites">{{.Picture}}</div>
{{- end}}
</section>
</div>

<h2>Mailboxes ({{total .Mailboxes}} messages)</h2>
<table id="mailboxes"><thead><tr><th>Mailbox</th><th>From</th><th>Subject</th><th>Size</th><th>Flags</th></tr></thead><tbody>
{{- range $b := .Mailboxes}}
{{- range $b.Messages}}
<tr><td>{{$b.Name}}</td><td>{{.From}}</td><td>{{.Subject}}</td><td class="n">{{kb .Size}}</td><td>{{.Flags}}</td></tr>
{{- end}}
{{- end}}
</tbody></table>

<h2>Internet hosts ({{total .Hosts}} messages)</h2>
<table id="hosts"><thead><tr><th>Host</th><th>Time</th><th>MAIL FROM</th><th>RCPT TO</th><th>Subject</th><th>Size</th></tr></thead><tbody>
{{- range $b := .Hosts}}
{{- range $b.Messages}}
<tr><td>{{$b.Name}}</td><td>{{clock .Time}}</td><td>{{.MailFrom}}</td><td>{{join .RcptTo ", "}}</td><td>{{.Subject}}</td><td class="n">{{kb .Size}}</td></tr>
{{- end}}
{{- end}}
</tbody></table>

<h2>Message tracking</h2>
<table id="events"><thead><tr><th>Time</th><th>Server</th><th>Event</th><th>Message</th><th>Sender</th><th>Recipients</th><th>Next hop</th><th>Reply / detail</th></tr></thead><tbody>
{{- range .Events}}
<tr class="ev-{{.Type}}"><td>{{clock .Time}}</td><td>{{.Server}}</td><td>{{.Type}}</td><td>{{.MessageID}}</td><td>{{.Sender}}</td><td>{{join .Recipients ", "}}</td><td>{{.NextHop}}</td><td>{{.Reply}}{{if and .Reply .Detail}}; {{end}}{{.Detail}}</td></tr>
{{- end}}
</tbody></table>
</main>
<script>
// The content is the server's own rendering, fetched again every second.
setInterval(function () {
  fetch(location.pathname, {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (t) {
    var d = new DOMParser().parseFromString(t, "text/html").getElementById("live");
    if (d) document.getElementById("live").innerHTML = d.innerHTML;
  }).catch(function () {});
}, 1000);
</script>
</body>
</html>
`))
