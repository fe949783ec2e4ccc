package imapd

import (
	"strings"
	"testing"
)

func TestUIDListRoundTrip(t *testing.T) {
	l := uidList{validity: 1700000000, next: 7, uids: []uidEntry{{1, "1.M1P1Q1R00.host"}, {5, "2.M2P1A1R01.host"}}}
	got, err := parseUIDList(l.format())
	if err != nil {
		t.Fatal(err)
	}
	if string(got.format()) != string(l.format()) {
		t.Fatalf("round trip:\n%s\nwant\n%s", got.format(), l.format())
	}
}

func TestUIDListRefusesWhatItDidNotWrite(t *testing.T) {
	for name, text := range map[string]string{
		"empty":            "",
		"no magic":         "uidlist 1 5 6\n",
		"zero validity":    "mailflow-uidlist 1 0 6\n",
		"leading zero":     "mailflow-uidlist 1 05 6\n",
		"next overflow":    "mailflow-uidlist 1 5 4294967296\n",
		"uid at next":      "mailflow-uidlist 1 5 6\n6 a\n",
		"out of order":     "mailflow-uidlist 1 5 9\n3 a\n2 b\n",
		"same id twice":    "mailflow-uidlist 1 5 9\n1 a\n2 a\n",
		"id with colon":    "mailflow-uidlist 1 5 9\n1 a:2,S\n",
		"id with slash":    "mailflow-uidlist 1 5 9\n1 ../x\n",
		"dot id":           "mailflow-uidlist 1 5 9\n1 .hidden\n",
		"missing id":       "mailflow-uidlist 1 5 9\n1\n",
		"negative":         "mailflow-uidlist 1 5 9\n-1 a\n",
		"second version":   "mailflow-uidlist 2 5 9\n",
		"trailing garbage": "mailflow-uidlist 1 5 9 x\n",
		"id with a space":  "mailflow-uidlist 1 5 9\n1 a b\n",
	} {
		if _, err := parseUIDList([]byte(text)); err == nil {
			t.Errorf("%s: %q accepted", name, text)
		}
	}
}

// FuzzParseUIDList: whatever a list file holds, parsing it neither panics nor yields
// a list that format and parse do not keep as it is.
func FuzzParseUIDList(f *testing.F) {
	f.Add([]byte("mailflow-uidlist 1 1700000000 3\n1 1.M1P1Q1R00.host\n2 2.M1P1Q2R00.host\n"))
	f.Add([]byte("mailflow-uidlist 1 5 1\n"))
	f.Add([]byte("mailflow-uidlist 1 5 9\n3 a\n2 b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseUIDList(data)
		if err != nil {
			return
		}
		again, err := parseUIDList(l.format())
		if err != nil {
			t.Fatalf("formatted list unreadable: %v\n%s", err, l.format())
		}
		if string(again.format()) != string(l.format()) {
			t.Fatalf("round trip changed the list")
		}
		for _, e := range l.uids {
			if e.uid == 0 || e.uid >= l.next || !validID(e.id) || strings.ContainsAny(e.id, "/:") {
				t.Fatalf("accepted entry %+v (next %d)", e, l.next)
			}
		}
	})
}
