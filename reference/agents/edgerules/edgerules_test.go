package edgerules_test

import (
	"context"
	"errors"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/edgerules"
	"github.com/mailflow/mailflow/reference/rules"
)

func TestEdgeRules(t *testing.T) {
	a := edgerules.New([]rules.Rule{
		{Name: "tag", Priority: 1, When: rules.Conditions{SubjectOrBodyContains: []string{"tag"}}, Then: rules.Actions{PrependSubject: "[E] ", BlindCopyTo: []string{"audit@contoso.test"}}},
		{Name: "refuse", Priority: 0, When: rules.Conditions{SubjectOrBodyContains: []string{"refuse"}}, Then: rules.Actions{Reject: &rules.Reject{Code: 554, Enhanced: [3]int{5, 7, 950}}}},
		{Name: "drop", Priority: 2, When: rules.Conditions{SubjectOrBodyContains: []string{"drop"}}, Then: rules.Actions{Delete: true}},
	})
	ctx := context.Background()
	run := func(subject string) (*agents.Message, error) {
		// Edge rules act on sessions that bypass anti-spam too.
		s, err := agents.New("EDGE1", []agents.Agent{a}).Connect(ctx, agents.Conn{Bypass: func() bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		m := &agents.Message{From: "bob@fabrikam.test", Rcpts: []string{"alice@contoso.test"}, Data: []byte("Subject: " + subject + "\r\n\r\nx\r\n")}
		return m, s.EndOfData(ctx, m)
	}
	m, err := run("tag")
	if err != nil || string(m.Data) != "Subject: [E] tag\r\n\r\nx\r\n" || len(m.Rcpts) != 2 {
		t.Errorf("tag: %v %q %v", err, m.Data, m.Rcpts)
	}
	_, err = run("refuse and tag")
	var ce *agents.ClosingError
	var se *smtp.SMTPError
	if !errors.As(err, &ce) || !errors.As(err, &se) || se.Code != 554 || se.Message != "Delivery not authorized, message refused" {
		t.Errorf("refuse: got %v, want 554 5.7.950 with the default text, ending the session", err)
	}
	if _, err := run("drop"); !errors.Is(err, agents.ErrDropped) {
		t.Errorf("drop: got %v", err)
	}
}
