package edgerules

import (
	"context"
	"strings"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/rules"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Edge Rules Agent"

// Agent applies an Edge's rules.
type Agent struct{ rules *rules.Set }

// New makes the agent of one Edge's rules.
func New(rs []rules.Rule) *Agent { return &Agent{rules: rules.New(rs)} }

func (a *Agent) Name() string              { return Name }
func (a *Agent) Priority() agents.Priority { return agents.EdgeRules }

// Everyone: Edge rules act on all mail through the Edge, the organisation's outbound
// mail and authenticated users' included.
func (a *Agent) Everyone() bool { return true }

// OnEndOfData applies the rules to m.
func (a *Agent) OnEndOfData(_ context.Context, _ *agents.Session, m *agents.Message) agents.Result {
	msg := &rules.Message{From: m.From, Rcpts: m.Rcpts, Data: m.Data}
	out := a.rules.Apply(msg)
	detail := strings.Join(out.Applied, "; ")
	switch {
	case out.Reject != nil:
		r := agents.Rejected(replies.RuleRejected(out.Reject.Code, out.Reject.Enhanced, out.Reject.Text), "%s", detail)
		r.Close = true
		return r
	case out.Deleted:
		return agents.Dropped("%s", detail)
	case out.Changed:
		m.Data, m.Rcpts = msg.Data, msg.Rcpts
		return agents.Noted("%s", detail)
	}
	return agents.Passed()
}
