package tracesuite

import (
	"reflect"
	"testing"
	"time"
)

func TestParseReceived(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		from    []string
		fromCmt []string
		forArg  []string // nil: no for clause
		date    string   // as DateTime reads it, RFC 3339
		numeric bool
	}{
		{"reference", " from mail.fabrikam.test ([192.0.2.1])\r\n\tby edge1.contoso.test (mailflow) with ESMTP id 0A1B\r\n\tfor <alice@contoso.test>; Mon, 02 Nov 2026 10:00:00 +0100\r\n",
			[]string{"mail.fabrikam.test"}, []string{"[192.0.2.1]"}, []string{"<alice@contoso.test>"}, "2026-11-02T10:00:00+01:00", true},
		{"postfix", " from mail.fabrikam.test (unknown [192.0.2.1])\r\n\tby edge1.contoso.test (Postfix) with ESMTP id 4Qx\r\n\tfor <alice@contoso.test>; Mon,  2 Nov 2026 10:00:00 +0000 (UTC)",
			[]string{"mail.fabrikam.test"}, []string{"unknown [192.0.2.1]"}, []string{"<alice@contoso.test>"}, "2026-11-02T10:00:00Z", true},
		{"exim: the address first, the EHLO name in a comment, the mailbox without brackets", " from [192.0.2.1] (helo=mail.fabrikam.test)\r\n\tby edge1.contoso.test with esmtp (Exim 4.96)\r\n\t(envelope-from <bob@fabrikam.test>)\r\n\tid 1q2w3e-000A\r\n\tfor alice@contoso.test;\r\n\tMon, 02 Nov 2026 10:00:00 +0000",
			[]string{"[192.0.2.1]"}, []string{"helo=mail.fabrikam.test"}, []string{"alice@contoso.test"}, "2026-11-02T10:00:00Z", true},
		{"no for clause, several recipients", " from a (a [192.0.2.1]) by b with SMTP id 1; 2 Nov 2026 10:00 -0500",
			[]string{"a"}, []string{"a [192.0.2.1]"}, nil, "2026-11-02T10:00:00-05:00", true},
		{"named zone", " from a by b; Mon, 2 Nov 2026 10:00:00 GMT", []string{"a"}, nil, nil, "2026-11-02T10:00:00Z", false},
		{"two paths in for", " from a by b for <x@c> <y@c>; Mon, 2 Nov 2026 10:00:00 +0000", []string{"a"}, nil, []string{"<x@c>", "<y@c>"}, "2026-11-02T10:00:00Z", true},
		{"quoted local part, nested comment with a quoted-pair", ` from a (x (nested; with \) ) y) by b for "j d"@c; 2 Nov 2026 10:00:00 +0000`,
			[]string{"a"}, []string{`x (nested; with \) ) y`}, []string{`"j d"@c`}, "2026-11-02T10:00:00Z", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReceived(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			from, ok := r.Clause("from")
			if !ok || !reflect.DeepEqual(from.Items, tc.from) || !reflect.DeepEqual(from.Comments, tc.fromCmt) {
				t.Errorf("from = %+v; want items %q, comments %q", from, tc.from, tc.fromCmt)
			}
			fc, ok := r.Clause("for")
			if ok != (tc.forArg != nil) || !reflect.DeepEqual(fc.Items, tc.forArg) {
				t.Errorf("for = %+v (%v); want %q", fc, ok, tc.forArg)
			}
			d, numeric, err := r.DateTime()
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Format(time.RFC3339); got != tc.date || numeric != tc.numeric {
				t.Errorf("date %s numeric %v; want %s %v", got, numeric, tc.date, tc.numeric)
			}
		})
	}
}

func TestParseReceivedRefuses(t *testing.T) {
	for _, v := range []string{
		" from a by b", // no date-time
		" from a (unbalanced by b; 2 Nov 2026 10:00 +0000",
		" from a by b for <x@c; 2 Nov 2026 10:00 +0000",
		" junk from a by b; 2 Nov 2026 10:00 +0000", // an item before any clause
	} {
		if r, err := ParseReceived(v); err == nil {
			t.Errorf("%q parsed as %+v", v, r)
		}
	}
	r, err := ParseReceived(" from a by b; yesterday")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.DateTime(); err == nil {
		t.Error(`"yesterday" read as a date-time`)
	}
}
