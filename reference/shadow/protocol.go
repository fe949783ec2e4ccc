package shadow

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Keyword is what a primary advertises after EHLO; Verb is the command a shadow asks
// with (Exchange 2010's names).
const (
	Keyword = "XSHADOW"
	Verb    = "XQDISCARD"
)

// maxIDs is how many IDs one command carries, so the line stays well under the
// servers' 4096-byte line limit (queue IDs are about 30 characters).
const maxIDs = 100

// Answer is what a primary says of the IDs it was asked about.
type Answer struct {
	// Incarnation identifies the primary's spool: a new one means the spool was lost.
	Incarnation string
	// Done are the IDs the primary no longer holds: delivered onward, or failed with
	// a DSN, either way off its hands.
	Done map[string]bool
}

// formatAnswer is the reply lines of an answer, for the primary.
func formatAnswer(a Answer, asked int) []string {
	lines := []string{"INCARNATION " + a.Incarnation}
	for id := range a.Done {
		lines = append(lines, "DONE "+id)
	}
	// Map order would make the reply differ from run to run.
	sort.Strings(lines[1:])
	return append(lines, fmt.Sprintf("2.0.0 %d of %d finished", len(a.Done), asked))
}

// parseAnswer reads the reply text (lines joined by "\n", codes stripped, as
// net/textproto gives it).
func parseAnswer(text string) (Answer, error) {
	a := Answer{Done: map[string]bool{}}
	for _, l := range strings.Split(text, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch strings.ToUpper(k) {
		case "INCARNATION":
			a.Incarnation = strings.TrimSpace(v)
		case "DONE":
			if v = strings.TrimSpace(v); v != "" {
				a.Done[v] = true
			}
		}
	}
	if a.Incarnation == "" {
		return Answer{}, fmt.Errorf("%s answer without an incarnation: %q", Verb, text)
	}
	return a, nil
}

// queuedRe finds the queue ID in a reference server's 250 after DATA
// ("250 2.6.0 <ID> Queued mail for delivery").
var queuedRe = regexp.MustCompile(`<([0-9A-Za-z.-]+)> Queued`)

// QueuedID is the primary's queue ID in its reply to the data, or "".
func QueuedID(reply string) string {
	if m := queuedRe.FindStringSubmatch(reply); m != nil {
		return m[1]
	}
	return ""
}

// root is the ID of the message a queue ID descends from: a Hub continues a message it
// categorized under the message's ID with a suffix (ForkedID), so the primary still
// holds what it was given while any message forked from it waits.
func root(id string) string {
	r, _, _ := strings.Cut(id, "-")
	return r
}

// ForkedID is the ID a server gives a message it makes from message id (the
// categorized copy of a Hub): the primary answers for id as long as it holds it.
func ForkedID(id string) string { return root(id) + "-c" }
