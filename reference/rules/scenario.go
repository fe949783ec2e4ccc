package rules

import (
	"fmt"

	"github.com/mailflow/mailflow/scenario"
)

// FromScenario makes the rules of a scenario's list; a rule without a priority has
// its place in the list, and a reject without a status the default 550 5.7.1.
func FromScenario(rs []scenario.TransportRule) ([]Rule, error) {
	out := make([]Rule, 0, len(rs))
	for i, r := range rs {
		rule := Rule{Name: r.Name, Priority: i}
		if r.Priority != nil {
			rule.Priority = *r.Priority
		}
		w := r.When
		rule.When = Conditions{From: w.From, SentTo: w.SentTo, RecipientDomainIs: w.RecipientDomainIs,
			SubjectOrBodyContains: w.SubjectOrBodyContains, AttachmentNameMatches: w.AttachmentNameMatches, SCLAtLeast: w.SCLAtLeast}
		if h := w.HeaderContains; h != nil {
			rule.When.HeaderName, rule.When.HeaderWords = h.Name, h.Words
		}
		t := r.Then
		rule.Then = Actions{PrependSubject: t.PrependSubject, RedirectTo: t.RedirectTo, BlindCopyTo: t.BlindCopyTo, Delete: t.Delete}
		if h := t.SetHeader; h != nil {
			rule.Then.SetHeaderName, rule.Then.SetHeaderValue = h.Name, h.Value
		}
		if rj := t.Reject; rj != nil {
			status := rj.Status
			if status == "" {
				status = scenario.DefaultRuleRejectStatus
			}
			c, err := scenario.ParseReplyCode(status)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", r.Name, err)
			}
			rej := &Reject{Code: c.Basic, Text: rj.Text}
			if rej.Code == 0 {
				rej.Code = 550
			}
			rej.Enhanced = [3]int{rej.Code / 100, 0, 0}
			if c.Enhanced != "" {
				if _, err := fmt.Sscanf(c.Enhanced, "%d.%d.%d", &rej.Enhanced[0], &rej.Enhanced[1], &rej.Enhanced[2]); err != nil {
					return nil, fmt.Errorf("rule %q: status %q: %w", r.Name, status, err)
				}
			} else {
				rej.Enhanced = [3]int{rej.Code / 100, 7, 1}
			}
			rule.Then.Reject = rej
		}
		out = append(out, rule)
	}
	return out, nil
}
