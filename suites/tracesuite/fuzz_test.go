package tracesuite

import (
	"reflect"
	"strings"
	"testing"
)

// receivedSeeds are Received values as the MTAs the suites meet write them.
var receivedSeeds = []string{
	// the reference (reference/smtpd's received())
	" from mail.fabrikam.test ([192.0.2.1])\r\n\tby edge1.contoso.test (mailflow) with ESMTP id 0A1B\r\n\tfor <alice@contoso.test>; Mon, 02 Nov 2026 10:00:00 +0100",
	" from mail.fabrikam.test ([192.0.2.1])\r\n\tby edge1.contoso.test (mailflow) with ESMTPS id 0A1B; Mon, 02 Nov 2026 10:00:00 +0000",
	// Postfix
	" from mail.fabrikam.test (unknown [192.0.2.1])\r\n\tby edge1.contoso.test (Postfix) with ESMTP id 4Qx\r\n\tfor <alice@contoso.test>; Mon,  2 Nov 2026 10:00:00 +0000 (UTC)",
	" from mail.fabrikam.test (mail.fabrikam.test [IPv6:2001:db8::1])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n\t(No client certificate requested)\r\n\tby edge1.contoso.test (Postfix) with ESMTPS id 4Qx2Lk1Zs5z9sRk\r\n\tfor <alice@contoso.test>; Mon,  2 Nov 2026 10:00:00 +0000 (UTC)",
	" by edge1.contoso.test (Postfix, from userid 0)\r\n\tid 4Qx2Lk1Zs5z9sRk; Mon,  2 Nov 2026 10:00:00 +0000 (UTC)",
	// Exim
	" from [192.0.2.1] (helo=mail.fabrikam.test)\r\n\tby edge1.contoso.test with esmtp (Exim 4.96)\r\n\t(envelope-from <bob@fabrikam.test>)\r\n\tid 1q2w3e-000A\r\n\tfor alice@contoso.test;\r\n\tMon, 02 Nov 2026 10:00:00 +0000",
	" from mail.fabrikam.test ([192.0.2.1] helo=mail.fabrikam.test)\r\n\tby edge1.contoso.test with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\r\n\t(Exim 4.96)\r\n\t(envelope-from <>)\r\n\tid 1q2w3e-000A-Bc; Mon, 02 Nov 2026 10:00:00 +0000",
	// OpenSMTPD
	" from mail.fabrikam.test (mail.fabrikam.test [192.0.2.1])\r\n\tby edge1.contoso.test (OpenSMTPD) with ESMTP id 5d4c3b2a\r\n\tfor <alice@contoso.test>;\r\n\tMon, 2 Nov 2026 10:00:00 +0000 (UTC)",
	" from localhost (localhost [local])\r\n\tby edge1.contoso.test (OpenSMTPD) with ESMTPA id 5d4c3b2a\r\n\tfor <alice@contoso.test>;\r\n\tMon, 2 Nov 2026 10:00:00 +0000 (UTC)",
	// Exchange
	" from EX01.contoso.test (10.0.0.11) by EX02.contoso.test\r\n (10.0.0.12) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.2.1118.7; Mon, 2 Nov 2026\r\n 10:00:00 +0100",
	" from EX01.contoso.test ([fe80::1%11]) by EX01.contoso.test\r\n ([fe80::1%11]) with mapi id 15.02.1118.007; Mon, 2 Nov 2026 10:00:00 +0100",
	// source routes, quoted local parts, odd spacing, broken values
	" from a by b for <@relay.test:x@c>; 2 Nov 2026 10:00 -0500",
	` from a (x (nested; with \) ) y) by b for "j d"@c; 2 Nov 2026 10:00:00 +0000`,
	" from a by b; yesterday",
	" from a (unbalanced by b; 2 Nov 2026 10:00 +0000",
	" from a by b for <x@c; 2 Nov 2026 10:00 +0000",
	" junk from a by b; 2 Nov 2026 10:00 +0000",
	";", "", "(c) ; (d)", "from ]; x", "from \\", "from (\\", "from <\\",
}

// FuzzParseReceived checks that ParseReceived never panics, that every clause it
// returns is a Stamp keyword, and that the value written back from what it returned
// parses to the same thing; DateTime must not panic on any Date it produced.
func FuzzParseReceived(f *testing.F) {
	for _, s := range receivedSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r, err := ParseReceived(value)
		if err != nil {
			return
		}
		for _, c := range r.Clauses {
			if !keywords[c.Name] {
				t.Fatalf("clause %q is not a Stamp keyword", c.Name)
			}
			for _, it := range c.Items {
				if it == "" {
					t.Fatalf("empty item in clause %q", c.Name)
				}
			}
		}
		_, _, _ = r.DateTime()
		var b strings.Builder
		for _, c := range r.Clauses {
			b.WriteString(" " + c.Name)
			for _, it := range c.Items {
				b.WriteString(" " + it)
			}
			for _, cm := range c.Comments {
				b.WriteString(" (" + cm + ")")
			}
		}
		b.WriteString("; " + r.Date)
		back, err := ParseReceived(b.String())
		if err != nil {
			t.Fatalf("%q parsed as %+v, written back as %q, which does not parse: %v", value, r, b.String(), err)
		}
		if !reflect.DeepEqual(normal(back), normal(r)) {
			t.Fatalf("%q parsed as\n%+v\nwritten back as %q, which parses as\n%+v", value, r, b.String(), back)
		}
	})
}

// normal makes empty and nil lists alike for comparison.
func normal(r Received) Received {
	for i := range r.Clauses {
		if len(r.Clauses[i].Items) == 0 {
			r.Clauses[i].Items = nil
		}
		if len(r.Clauses[i].Comments) == 0 {
			r.Clauses[i].Comments = nil
		}
	}
	return r
}

// FuzzForwardPath checks that what forwardPath accepts as a for clause's address has
// a local part and a domain and no brackets, white space or list separators left.
func FuzzForwardPath(f *testing.F) {
	for _, s := range []string{"<alice@contoso.test>", "alice@contoso.test", "<@relay.test:alice@contoso.test>",
		"<@a,@b:alice@contoso.test>", `"j d"@c`, "<>", "<", ">", "<a@>", "<@a>", "<@a:>", "a@b>", "<<a@b>>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, ok := forwardPath(s)
		if !ok {
			return
		}
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, "<>, \t") {
			t.Fatalf("forwardPath(%q) = %q: not local@domain", s, addr)
		}
	})
}
