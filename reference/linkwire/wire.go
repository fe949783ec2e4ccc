// Package linkwire carries Exchange 2003 link state (reference/linkstate) between Hub
// processes over TCP, as Exchange passes it over port 691 between a routing group's
// master and its members and, with X-LINK2STATE, between the groups' masters
// (EX03-LINKSTATE): the same messages on one port for both, so that a bridgehead, a
// master and the other masters need nothing but each other's address. Each exchange
// is one connection, one request line and its answer (ROUTE-020, ROUTE-021):
//
//	STATE <to> <from> <up|down> <version> <connector>   a state passed on
//	TABLE <to> <from>                                   the receiver's table, please
//
// answered by
//
//	TAKEN | KEPT                       the state was newer and taken, or not
//	ROWS <n>, then n lines ROW <up|down> <version> <connector>
//	ERR <text>                         refused (not running, not a peer, bad line)
//
// A server that is down does not answer, and its sender goes on without it, which is
// what leaves a partitioned server with a stale table.
package linkwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailflow/mailflow/reference/linkstate"
)

// Port is where Exchange 2003 servers pass link state (EX03-LINKSTATE).
const Port = 691

// Limits of what is read from the wire.
const (
	maxLine      = 1024
	maxRows      = 4096
	maxServer    = 63
	maxConnector = 256
	maxVersion   = 999999999
)

// Request is one message as it travels: the server it is for, and the message.
type Request struct {
	To      string
	Message linkstate.Message
}

// String is the request's line, without its line end.
func (r Request) String() string {
	if r.Message.Kind == linkstate.KindTable {
		return "TABLE " + r.To + " " + r.Message.From
	}
	return "STATE " + r.To + " " + r.Message.From + " " + formatState(r.Message.State)
}

// ParseRequest reads a request line (its line end already taken off). Every field is
// checked, so that a line it accepts is written back by String as one that parses the
// same.
func ParseRequest(line string) (Request, error) {
	if err := checkLine(line); err != nil {
		return Request{}, err
	}
	verb, rest, _ := strings.Cut(line, " ")
	switch verb {
	case "TABLE":
		f := strings.Split(rest, " ")
		if len(f) != 2 {
			return Request{}, fmt.Errorf("linkwire: TABLE wants <to> <from>, got %q", rest)
		}
		if err := checkServers(f[0], f[1]); err != nil {
			return Request{}, err
		}
		return Request{To: f[0], Message: linkstate.Message{Kind: linkstate.KindTable, From: f[1]}}, nil
	case "STATE":
		f := strings.SplitN(rest, " ", 3)
		if len(f) != 3 {
			return Request{}, fmt.Errorf("linkwire: STATE wants <to> <from> <up|down> <version> <connector>, got %q", rest)
		}
		if err := checkServers(f[0], f[1]); err != nil {
			return Request{}, err
		}
		s, err := parseState(f[2])
		if err != nil {
			return Request{}, err
		}
		return Request{To: f[0], Message: linkstate.Message{Kind: linkstate.KindState, From: f[1], State: s}}, nil
	}
	return Request{}, fmt.Errorf("linkwire: unknown request %q (want STATE or TABLE)", verb)
}

// formatState is "<up|down> <version> <connector>".
func formatState(s linkstate.State) string {
	word := "down"
	if s.Up {
		word = "up"
	}
	return word + " " + strconv.Itoa(s.Version) + " " + s.Connector
}

func parseState(text string) (linkstate.State, error) {
	f := strings.SplitN(text, " ", 3)
	if len(f) != 3 {
		return linkstate.State{}, fmt.Errorf("linkwire: state wants <up|down> <version> <connector>, got %q", text)
	}
	var s linkstate.State
	switch f[0] {
	case "up":
		s.Up = true
	case "down":
	default:
		return linkstate.State{}, fmt.Errorf("linkwire: state %q: want up or down", f[0])
	}
	if len(f[1]) == 0 || len(f[1]) > len(strconv.Itoa(maxVersion)) || strings.Trim(f[1], "0123456789") != "" {
		return linkstate.State{}, fmt.Errorf("linkwire: version %q: want a number from 0 to %d", f[1], maxVersion)
	}
	s.Version, _ = strconv.Atoi(f[1])
	if err := checkConnector(f[2]); err != nil {
		return linkstate.State{}, err
	}
	s.Connector = f[2]
	return s, nil
}

// checkLine refuses what no request or answer holds: an overlong line, bytes that
// are not UTF-8, control characters.
func checkLine(line string) error {
	if len(line) > maxLine {
		return fmt.Errorf("linkwire: line of %d bytes, over %d", len(line), maxLine)
	}
	if !utf8.ValidString(line) {
		return errors.New("linkwire: line is not UTF-8")
	}
	if i := strings.IndexFunc(line, unicode.IsControl); i >= 0 {
		return fmt.Errorf("linkwire: control character at byte %d", i)
	}
	return nil
}

// checkServers checks two server names as a scenario writes them: letters, digits
// and hyphens, at most 63.
func checkServers(names ...string) error {
	for _, n := range names {
		if n == "" || len(n) > maxServer || strings.IndexFunc(n, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			return fmt.Errorf("linkwire: %q is not a server name (letters, digits and hyphens, at most %d)", n, maxServer)
		}
	}
	return nil
}

func checkConnector(name string) error {
	if name == "" || len(name) > maxConnector || strings.TrimSpace(name) != name {
		return fmt.Errorf("linkwire: %q is not a connector name (1 to %d bytes, no space around it)", name, maxConnector)
	}
	return nil
}

// writeReply writes the answer to a request of kind k.
func writeReply(w io.Writer, k linkstate.Kind, rep linkstate.Reply, err error) error {
	var b strings.Builder
	switch {
	case err != nil:
		b.WriteString("ERR " + strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, err.Error()))
		b.WriteString("\r\n")
	case k == linkstate.KindTable:
		fmt.Fprintf(&b, "ROWS %d\r\n", len(rep.Table))
		for _, s := range rep.Table {
			b.WriteString("ROW " + formatState(s) + "\r\n")
		}
	case rep.Taken:
		b.WriteString("TAKEN\r\n")
	default:
		b.WriteString("KEPT\r\n")
	}
	_, werr := io.WriteString(w, b.String())
	return werr
}

// RemoteError is a request the receiver refused, in its words.
type RemoteError struct{ Text string }

func (e *RemoteError) Error() string { return "refused: " + e.Text }

// ReadReply reads the answer to a request of kind k.
func ReadReply(r *bufio.Reader, k linkstate.Kind) (linkstate.Reply, error) {
	line, err := readLine(r)
	if err != nil {
		return linkstate.Reply{}, err
	}
	if text, ok := strings.CutPrefix(line, "ERR "); ok {
		return linkstate.Reply{}, &RemoteError{Text: text}
	}
	if k != linkstate.KindTable {
		switch line {
		case "TAKEN":
			return linkstate.Reply{Taken: true}, nil
		case "KEPT":
			return linkstate.Reply{}, nil
		}
		return linkstate.Reply{}, fmt.Errorf("linkwire: answer %q to a state: want TAKEN, KEPT or ERR", line)
	}
	count, ok := strings.CutPrefix(line, "ROWS ")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 0 || n > maxRows || strconv.Itoa(n) != count {
		return linkstate.Reply{}, fmt.Errorf("linkwire: answer %q to a table request: want ROWS <0 to %d> or ERR", line, maxRows)
	}
	rep := linkstate.Reply{Table: make([]linkstate.State, 0, n)}
	for range n {
		line, err := readLine(r)
		if err != nil {
			return linkstate.Reply{}, err
		}
		text, ok := strings.CutPrefix(line, "ROW ")
		if !ok {
			return linkstate.Reply{}, fmt.Errorf("linkwire: %q in a table: want ROW", line)
		}
		s, err := parseState(text)
		if err != nil {
			return linkstate.Reply{}, err
		}
		rep.Table = append(rep.Table, s)
	}
	return rep, nil
}

// readLine reads one line of at most maxLine bytes and takes its line end (LF or
// CRLF) off.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxLine+2 {
			return "", fmt.Errorf("linkwire: line over %d bytes", maxLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("linkwire: reading a line: %w", err)
	}
	line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if err := checkLine(line); err != nil {
		return "", err
	}
	return line, nil
}
