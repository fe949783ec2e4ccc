package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// uidListName is the file, in a folder's Maildir, that keeps its UIDs. Maildir readers
// look only in tmp, new and cur, so the store and other clients never see it.
const uidListName = "mailflow-uidlist"

// uidListMagic starts the first line, with the format's version.
const uidListMagic = "mailflow-uidlist 1"

// uidList is what a folder remembers between sessions: UIDVALIDITY, the next UID to
// give, and the UID of each message it has seen, by Maildir ID (file name without its
// ":2," info).
type uidList struct {
	validity uint32
	next     uint32
	uids     []uidEntry // ascending UID
}

type uidEntry struct {
	uid uint32
	id  string
}

var errUIDList = errors.New("uid list")

// parseUIDList reads a list written by format. Anything else is an error, and the
// folder then starts over with a new UIDVALIDITY, which tells clients to forget what
// they cached (RFC 3501 §2.3.1.1) rather than trust UIDs that may be wrong.
func parseUIDList(data []byte) (uidList, error) {
	var l uidList
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	if !sc.Scan() {
		return l, fmt.Errorf("%w: empty", errUIDList)
	}
	head := sc.Text()
	rest, ok := strings.CutPrefix(head, uidListMagic+" ")
	if !ok {
		return l, fmt.Errorf("%w: line 1: not %q", errUIDList, uidListMagic)
	}
	v, n, ok := strings.Cut(rest, " ")
	if !ok {
		return l, fmt.Errorf("%w: line 1: want validity and next UID", errUIDList)
	}
	validity, err := parseUID(v)
	if err != nil {
		return l, fmt.Errorf("%w: line 1: validity: %w", errUIDList, err)
	}
	next, err := parseUID(n)
	if err != nil {
		return l, fmt.Errorf("%w: line 1: next UID: %w", errUIDList, err)
	}
	l.validity, l.next = validity, next
	seen := map[string]bool{}
	for line := 2; sc.Scan(); line++ {
		u, id, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return uidList{}, fmt.Errorf("%w: line %d: want UID and ID", errUIDList, line)
		}
		uid, err := parseUID(u)
		if err != nil {
			return uidList{}, fmt.Errorf("%w: line %d: %w", errUIDList, line, err)
		}
		switch {
		case uid >= l.next:
			return uidList{}, fmt.Errorf("%w: line %d: UID %d not below the next UID %d", errUIDList, line, uid, l.next)
		case len(l.uids) > 0 && uid <= l.uids[len(l.uids)-1].uid:
			return uidList{}, fmt.Errorf("%w: line %d: UID %d out of order", errUIDList, line, uid)
		case !validID(id):
			return uidList{}, fmt.Errorf("%w: line %d: bad message ID %q", errUIDList, line, id)
		case seen[id]:
			return uidList{}, fmt.Errorf("%w: line %d: message ID %q twice", errUIDList, line, id)
		}
		seen[id] = true
		l.uids = append(l.uids, uidEntry{uid, id})
	}
	if err := sc.Err(); err != nil {
		return uidList{}, fmt.Errorf("%w: %w", errUIDList, err)
	}
	return l, nil
}

// parseUID reads a non-zero 32-bit number in plain decimal.
func parseUID(s string) (uint32, error) {
	if s == "" || s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad number %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return uint32(n), nil
}

// validID is a Maildir ID that can be a file name and a list entry.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && id[0] != '.' && !strings.ContainsAny(id, "/: \t\r\n\x00")
}

func (l uidList) format() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %d\n", uidListMagic, l.validity, l.next)
	for _, e := range l.uids {
		fmt.Fprintf(&b, "%d %s\n", e.uid, e.id)
	}
	return b.Bytes()
}
