package smtpd

import (
	"bytes"
)

// orgHeaderPrefix names the headers Exchange servers trust from one another (the
// spam confidence level, the authentication result, the original arrival time).
const orgHeaderPrefix = "x-ms-exchange-organization-"

// StripOrgHeaders is stripOrgHeaders for what leaves the organisation: a transport
// server sending to the Internet takes the organisation's own fields off, the SCL
// among them (FILTER-013).
func StripOrgHeaders(data []byte) []byte { return stripOrgHeaders(data) }

// stripOrgHeaders removes every X-MS-Exchange-Organization-* field from the header
// section of data, continuation lines included, and leaves every other octet as it
// was: a sender without ms-Exch-Accept-Headers-Organization could otherwise forge an
// SCL of -1 and pass filtering (TRACE-007). Received fields stay (TRACE-006).
func stripOrgHeaders(data []byte) []byte {
	var out []byte
	rest := data
	dropping := false
	for len(rest) > 0 {
		n := bytes.IndexByte(rest, '\n') + 1
		if n == 0 {
			n = len(rest)
		}
		line := rest[:n]
		if len(bytes.TrimRight(line, "\r\n")) == 0 { // the end of the header section
			if out == nil {
				return data
			}
			return append(out, rest...)
		}
		if line[0] != ' ' && line[0] != '\t' {
			dropping = len(line) > len(orgHeaderPrefix) && bytes.EqualFold(line[:len(orgHeaderPrefix)], []byte(orgHeaderPrefix))
		}
		if dropping && out == nil {
			out = append(make([]byte, 0, len(data)), data[:len(data)-len(rest)]...)
		}
		if !dropping && out != nil {
			out = append(out, line...)
		}
		rest = rest[n:]
	}
	if out == nil {
		return data
	}
	return out
}
