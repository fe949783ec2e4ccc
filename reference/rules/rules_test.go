package rules_test

import (
	"strings"
	"testing"

	"github.com/mailflow/mailflow/reference/rules"
)

const msg = "From: bob@fabrikam.test\r\nSubject: Quarterly\r\n numbers\r\nX-Project: Apollo 11\r\n\r\nSee the offer.\r\n"

func apply(rs []rules.Rule, m *rules.Message) rules.Outcome { return rules.New(rs).Apply(m) }

func TestActions(t *testing.T) {
	m := &rules.Message{From: "bob@fabrikam.test", Rcpts: []string{"alice@contoso.test"}, Data: []byte(msg)}
	out := apply([]rules.Rule{
		{Name: "second", Priority: 2, When: rules.Conditions{SubjectOrBodyContains: []string{"OFFER"}}, Then: rules.Actions{PrependSubject: "[2] "}},
		{Name: "first", Priority: 1, When: rules.Conditions{HeaderName: "x-project", HeaderWords: []string{"apollo"}}, Then: rules.Actions{PrependSubject: "[1] ", SetHeaderName: "X-Project", SetHeaderValue: "hidden"}},
		{Name: "bcc", Priority: 3, When: rules.Conditions{RecipientDomainIs: []string{"CONTOSO.test"}}, Then: rules.Actions{BlindCopyTo: []string{"audit@contoso.test"}}},
		{Name: "nothing", Priority: 4, When: rules.Conditions{From: []string{"carol@contoso.test"}}, Then: rules.Actions{Delete: true}},
	}, m)
	got := string(m.Data)
	for _, want := range []string{"Subject: [2] [1] Quarterly\r\n numbers\r\n", "X-Project: hidden\r\n\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("data lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "X-Project") != 1 || strings.Join(m.Rcpts, ",") != "alice@contoso.test,audit@contoso.test" || out.Deleted || !out.Changed {
		t.Errorf("outcome %+v, rcpts %v, data:\n%s", out, m.Rcpts, got)
	}
	if len(out.Applied) != 3 || !strings.Contains(out.Applied[0], `"first"`) {
		t.Errorf("applied %q", out.Applied)
	}
}

func TestEncodedBody(t *testing.T) {
	data := "Subject: hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nVGhlIHNlY3JldCBvZmZlcg==\r\n--b--\r\n"
	m := &rules.Message{Data: []byte(data)}
	out := apply([]rules.Rule{{Name: "r", When: rules.Conditions{SubjectOrBodyContains: []string{"secret offer"}}, Then: rules.Actions{Delete: true}}}, m)
	if !out.Deleted {
		t.Errorf("a word in a base64 text part was not found")
	}
}

func TestRejectStops(t *testing.T) {
	m := &rules.Message{From: "x@y.test", Rcpts: []string{"legal@contoso.test"}, Data: []byte(msg)}
	out := apply([]rules.Rule{
		{Name: "redirect", Priority: 0, When: rules.Conditions{SentTo: []string{"Legal@contoso.test"}}, Then: rules.Actions{RedirectTo: []string{"carol@contoso.test"}}},
		{Name: "reject", Priority: 1, Then: rules.Actions{Reject: &rules.Reject{Code: 550, Enhanced: [3]int{5, 7, 901}}}},
		{Name: "delete", Priority: 2, Then: rules.Actions{Delete: true}},
	}, m)
	if out.Reject == nil || out.Rule != "reject" || out.Deleted || m.Rcpts[0] != "carol@contoso.test" {
		t.Errorf("outcome %+v, rcpts %v", out, m.Rcpts)
	}
}

func TestSCLAndAttachment(t *testing.T) {
	five, eight := 5, 8
	data := "X-MS-Exchange-Organization-SCL: 6\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=\"x.ISO\"\r\n\r\nx\r\n--b--\r\n"
	for _, tc := range []struct {
		c    rules.Conditions
		want bool
	}{
		{rules.Conditions{SCLAtLeast: &five}, true},
		{rules.Conditions{SCLAtLeast: &eight}, false},
		{rules.Conditions{AttachmentNameMatches: []string{"*.iso"}}, true},
		{rules.Conditions{AttachmentNameMatches: []string{"*.exe"}}, false},
	} {
		m := &rules.Message{Data: []byte(data)}
		out := apply([]rules.Rule{{Name: "r", When: tc.c, Then: rules.Actions{SetHeaderName: "X-Hit", SetHeaderValue: "1"}}}, m)
		if out.Changed != tc.want {
			t.Errorf("%+v: matched %v, want %v", tc.c, out.Changed, tc.want)
		}
	}
}
