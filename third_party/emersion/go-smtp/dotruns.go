package smtp

import (
	"bufio"
	"bytes"
	"io"
)

// dotRuns writes message data through net/textproto's dot writer, which stuffs leading
// dots and ends bare LFs with CRLF, but copies a byte at a time: runs of octets in the
// middle of a line, which it would copy unchanged, go straight to the buffered writer
// beneath it instead, so the bytes on the wire are the same. The dot writer stays the
// one to close the data, and the one textproto closes before the next command.
type dotRuns struct {
	w     *bufio.Writer // what dot writes to
	dot   io.Writer
	state dotState // dot's state, followed octet by octet
}

type dotState int

const (
	dotBeginLine dotState = iota // also the state before the first octet
	dotCR
	dotData
)

func newDotRuns(w *bufio.Writer, dot io.Writer) *dotRuns {
	return &dotRuns{w: w, dot: dot}
}

func (d *dotRuns) Write(b []byte) (n int, err error) {
	for n < len(b) {
		if d.state == dotData {
			if run := plainRun(b[n:]); run > 0 {
				m, err := d.w.Write(b[n : n+run])
				n += m
				if err != nil {
					return n, err
				}
				continue
			}
		}
		c := b[n]
		m, err := d.dot.Write(b[n : n+1])
		n += m
		if err != nil {
			return n, err
		}
		d.state = nextDotState(d.state, c)
	}
	return n, nil
}

// plainRun is the length of the octets before the first CR or LF in b.
func plainRun(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		i = len(b)
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		i = j
	}
	return i
}

// nextDotState is textproto's dot writer's state after it wrote c in state s.
func nextDotState(s dotState, c byte) dotState {
	if s == dotCR {
		// After a CR, an LF ends the line; anything else, another CR included, is data.
		if c == '\n' {
			return dotBeginLine
		}
		return dotData
	}
	switch c {
	case '\r':
		return dotCR
	case '\n':
		return dotBeginLine
	}
	return dotData
}
