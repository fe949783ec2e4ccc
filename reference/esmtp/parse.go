package esmtp

import (
	"errors"
	"strings"
)

// command is one parsed command line.
type command struct {
	verb string // upper case
	args string // after the verb and one space, as sent
}

// parseCommand splits a command line (without CRLF) into verb and arguments. The verb
// is the letters up to the first space; anything else in it makes it unknown.
func parseCommand(line string) command {
	verb, args, _ := strings.Cut(line, " ")
	return command{verb: strings.ToUpper(verb), args: args}
}

// errSyntax is a path or parameter that does not parse.
var errSyntax = errors.New("syntax error")

// parsePathArg parses "FROM:<path> params" or "TO:<path> params": keyword is "FROM" or
// "TO". RFC 5321 §4.1.1.2 and §4.1.1.3 put no space after the colon and the path in
// angle brackets (SMTP-007).
func parsePathArg(args, keyword string) (path, rest string, err error) {
	if len(args) < len(keyword)+1 || !strings.EqualFold(args[:len(keyword)], keyword) || args[len(keyword)] != ':' {
		return "", "", errSyntax
	}
	s := args[len(keyword)+1:]
	if !strings.HasPrefix(s, "<") {
		return "", "", errSyntax
	}
	end, err := pathEnd(s)
	if err != nil {
		return "", "", err
	}
	path, rest = s[1:end], s[end+1:]
	if rest != "" && rest[0] != ' ' {
		return "", "", errSyntax
	}
	return path, strings.TrimLeft(rest, " "), nil
}

// pathEnd finds the '>' that closes the path s starts with, skipping quoted strings of
// the local part.
func pathEnd(s string) (int, error) {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '>':
			return i, nil
		case !quoted && c == '<':
			return 0, errSyntax
		}
	}
	return 0, errSyntax
}

// parseMailbox checks a path's mailbox (after any source route) the way RFC 5321 §4.1.2
// writes it: Local-part "@" ( Domain / address-literal ), and returns it with the
// domain as written. A source route ("@a,@b:") is dropped, as §3.6.1 allows.
func parseMailbox(path string) (string, error) {
	if strings.HasPrefix(path, "@") {
		i := strings.IndexByte(path, ':')
		if i < 0 {
			return "", errSyntax
		}
		for _, hop := range strings.Split(path[:i], ",") {
			if !strings.HasPrefix(hop, "@") || !validDomain(hop[1:]) {
				return "", errSyntax
			}
		}
		path = path[i+1:]
	}
	at := strings.LastIndexByte(path, '@')
	if at <= 0 || at == len(path)-1 {
		return "", errSyntax
	}
	local, domain := path[:at], path[at+1:]
	if !validLocal(local) || !validDomain(domain) {
		return "", errSyntax
	}
	return path, nil
}

// validLocal accepts a Dot-string or a Quoted-string (RFC 5321 §4.1.2), and UTF-8
// beyond ASCII, which RFC 6531 allows and the policy judges.
func validLocal(s string) bool {
	if len(s) > 64 {
		return false
	}
	if strings.HasPrefix(s, `"`) {
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			c := s[i]
			if c == '\\' {
				i++
				if i >= len(s)-1 || s[i] < 32 || s[i] > 126 {
					return false
				}
				continue
			}
			if c == '"' || c < 32 || c == 127 {
				return false
			}
		}
		return true
	}
	for _, atom := range strings.Split(s, ".") {
		if atom == "" {
			return false
		}
		for i := 0; i < len(atom); i++ {
			if c := atom[i]; c < 128 && !atext(c) {
				return false
			}
		}
	}
	return true
}

// atext is RFC 5322 §3.2.3's atext.
func atext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// validDomain accepts a domain (dot-separated labels of letters, digits and hyphens,
// or UTF-8 labels) or an address literal in brackets, RFC 5321 §4.1.2 and §4.1.3.
func validDomain(d string) bool {
	if d == "" || len(d) > 255 {
		return false
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' || len(d) < 3 {
			return false
		}
		for i := 1; i < len(d)-1; i++ {
			if c := d[i]; c <= 32 || c >= 127 || c == '[' || c == ']' || c == '\\' {
				return false
			}
		}
		return true
	}
	d = strings.TrimSuffix(d, ".")
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c < 128 && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parseParams splits "KEY=value KEY2" (RFC 5321 §4.1.2 Mail-parameters) into upper-case
// keys and values as sent; a key given twice is a syntax error.
func parseParams(s string) (map[string]string, error) {
	params := map[string]string{}
	for _, p := range strings.Fields(s) {
		k, v, hasValue := strings.Cut(p, "=")
		if k == "" || (hasValue && v == "") {
			return nil, errSyntax
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return nil, errSyntax
			}
		}
		k = strings.ToUpper(k)
		if _, dup := params[k]; dup {
			return nil, errSyntax
		}
		params[k] = v
	}
	return params, nil
}

// validXtext checks RFC 3461 §4 xtext: printable ASCII but '+' and '=', with "+XX"
// hex escapes.
func validXtext(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		case c < 33 || c > 126 || c == '=':
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// decodeXtext undoes validXtext's escapes.
func decodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) byte {
	if c >= 'A' {
		return c - 'A' + 10
	}
	return c - '0'
}
