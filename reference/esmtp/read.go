package esmtp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// lineProblem is what makes a command line unfit to execute.
type lineProblem int

const (
	lineOK lineProblem = iota
	lineTooLong
	lineBareLF // an LF not preceded by CR
	lineBareCR // a CR not followed by LF
	lineNUL
)

// readCommandLine reads one command line, up to and including <CRLF>, and returns it
// without the CRLF. A line is what ends at CRLF, so a bare LF inside it does not end a
// command (SEC-006): "MAIL FROM:<a>\nRCPT TO:<b>\r\n" is one line, refused whole. A
// client that ends its lines with a bare LF alone would then wait for a reply the
// server is not yet due, so when the input so far ends at a bare LF the line is
// returned at once, unterminated (crlf false, problem lineBareLF), and the caller
// treats what follows up to the next CRLF as the rest of that refused line.
func readCommandLine(r *bufio.Reader, max int) (line []byte, problem lineProblem, crlf bool, err error) {
	var buf []byte
	n := 0
	var last byte // the last octet of the previous chunk
	for {
		chunk, err := r.ReadSlice('\n')
		n += len(chunk)
		if n <= max+2 {
			buf = append(buf, chunk...)
		} else if problem == lineOK {
			problem = lineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			last = chunk[len(chunk)-1]
			continue
		}
		if err != nil {
			return nil, problem, false, err
		}
		if len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && last == '\r' {
			break
		}
		problem = lineBareLF
		if r.Buffered() == 0 {
			return nil, problem, false, nil
		}
		last = '\n'
	}
	if problem != lineOK {
		return nil, problem, true, nil
	}
	line = buf[:len(buf)-2]
	switch {
	case bytes.IndexByte(line, '\r') >= 0:
		return nil, lineBareCR, true, nil
	case bytes.IndexByte(line, 0) >= 0:
		return nil, lineNUL, true, nil
	}
	return line, lineOK, true, nil
}

// dataResult is what reading a message's data found besides its octets.
type dataResult struct {
	size    int64 // octets after dot-unstuffing, kept or not
	tooBig  bool  // more than the limit: the octets past it were not kept
	bareLF  bool
	bareCR  bool
	partial bool // the connection ended before the terminator
}

// readData reads DATA content up to the line "." and returns it dot-unstuffed (RFC
// 5321 §4.5.2). DATA ends only at <CRLF>.<CRLF> (SEC-001): "." after a bare LF, or
// ".\n", is content. A bare CR or LF anywhere is recorded so the message can be refused
// whole rather than passed on to a next hop that would read it differently (SEC-002).
// At most limit octets are kept (0: no limit); the rest is read and counted, so the
// server stays in step with the client while holding no more than limit in memory
// (SEC-009).
func readData(r *bufio.Reader, limit int64) ([]byte, dataResult, error) {
	var out bytes.Buffer
	var res dataResult
	lineStart := true // the data so far ends with CRLF (or is empty)
	cr := false       // the last octet read was a CR
	for {
		chunk, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			res.partial = true
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, res, err
		}
		if lineStart && bytes.Equal(chunk, []byte(".\r\n")) {
			return out.Bytes(), res, nil
		}
		content := chunk
		if lineStart && len(content) > 0 && content[0] == '.' {
			content = content[1:]
			cr = false
		}
		prevCR := cr
		for _, b := range content {
			switch {
			case b == '\n' && !cr:
				res.bareLF = true
			case cr && b != '\n':
				res.bareCR = true
			}
			cr = b == '\r'
		}
		lineStart = err == nil && (len(content) >= 2 && content[len(content)-2] == '\r' || len(content) == 1 && prevCR)
		res.size += int64(len(content))
		if limit > 0 && res.size > limit {
			res.tooBig = true
			continue
		}
		out.Write(content)
	}
}
