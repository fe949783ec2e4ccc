package senderfilter_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/senderfilter"
)

func mail(t *testing.T, f *senderfilter.Filter, from string) (string, string) {
	t.Helper()
	ctx := context.Background()
	s, err := agents.New("EDGE1", []agents.Agent{f}).Connect(ctx, agents.Conn{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Mail(ctx, from); err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			t.Fatal(err)
		}
		e := se.EnhancedCode
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message), ""
	}
	m := &agents.Message{From: from, Rcpts: []string{"alice@contoso.test"}}
	if err := s.EndOfData(ctx, m); err != nil {
		t.Fatal(err)
	}
	return "250", string(m.Header())
}

func TestSenderFilter(t *testing.T) {
	opts := []senderfilter.Option{senderfilter.WithBlockedSenders("Spammer@Fabrikam.test"), senderfilter.WithBlockedDomains("spam.test", "*.junk.test")}
	reject := senderfilter.New(opts...)
	blank := senderfilter.New(append(opts, senderfilter.WithBlankSenderBlocking(true))...)
	stamp := senderfilter.New(append(opts, senderfilter.WithStamp(7))...)
	const denied = "554 5.1.0 Sender Denied"
	for _, tc := range []struct {
		name   string
		f      *senderfilter.Filter
		from   string
		want   string
		header string
	}{
		{"blocked sender, any case", reject, "spammer@fabrikam.TEST", denied, ""},
		{"another sender of that domain", reject, "bob@fabrikam.test", "250", ""},
		{"blocked domain", reject, "x@spam.test", denied, ""},
		{"sub-domain of a plain blocked domain passes", reject, "x@mail.spam.test", "250", ""},
		{"*.domain blocks the domain", reject, "x@junk.test", denied, ""},
		{"*.domain blocks sub-domains", reject, "x@a.b.junk.test", denied, ""},
		{"look-alike domain passes", reject, "x@notjunk.test", "250", ""},
		{"blank sender passes by default", reject, "", "250", ""},
		{"blank sender blocked when configured", blank, "", denied, ""},
		{"stamp: taken and stamped", stamp, "x@spam.test", "250",
			"X-MS-Exchange-Organization-Antispam-Report: SFV:BLK; blocked domain spam.test\r\nX-MS-Exchange-Organization-SCL: 7\r\n"},
		{"stamp: others not stamped", stamp, "bob@fabrikam.test", "250", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, header := mail(t, tc.f, tc.from)
			if got != tc.want || header != tc.header {
				t.Errorf("MAIL FROM:<%s> = %q, header %q; want %q, %q", tc.from, got, header, tc.want, tc.header)
			}
		})
	}
}
