package contentfilter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/spamc"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Content Filter Agent"

// HeaderSCL carries the SCL inside the organisation; the Edge strips it from what
// an Internet client sends (TRACE-007).
const HeaderSCL = "X-MS-Exchange-Organization-SCL"

// HeaderQuarantine marks a quarantined message with the recipients it was for, so
// an administrator can release it; the quarantine mailbox keeps it in its INBOX,
// whatever the SCL (reference/mailbox).
const HeaderQuarantine = "X-MS-Exchange-Organization-Quarantine"

// Off is a threshold that is not enabled.
const Off = -1

// Scorer scores a message; *spamc.Client is one.
type Scorer interface {
	Check(ctx context.Context, msg []byte) (spamc.Result, error)
	Addr() string
}

// Filter is the agent; it is shared by the sessions of a server.
type Filter struct {
	scorer                     Scorer
	deleteAt, rejectAt, quarAt int
	quarantine, rejectText     string
}

// Option configures New.
type Option func(*Filter)

// WithDelete deletes messages at or above scl (SCLDeleteThreshold).
func WithDelete(scl int) Option { return func(f *Filter) { f.deleteAt = scl } }

// WithReject refuses messages at or above scl (SCLRejectThreshold), with text or
// Exchange's default.
func WithReject(scl int, text string) Option {
	return func(f *Filter) { f.rejectAt, f.rejectText = scl, text }
}

// WithQuarantine sends messages at or above scl to mailbox alone
// (SCLQuarantineThreshold, QuarantineMailbox).
func WithQuarantine(scl int, mailbox string) Option {
	return func(f *Filter) { f.quarAt, f.quarantine = scl, mailbox }
}

// New makes the agent; with no threshold it records the SCL and delivers.
func New(s Scorer, opts ...Option) *Filter {
	f := &Filter{scorer: s, deleteAt: Off, rejectAt: Off, quarAt: Off}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Filter) Name() string              { return Name }
func (f *Filter) Priority() agents.Priority { return agents.ContentFiltering }

// SCL maps spamd's score to a spam confidence level: spamd's threshold (its
// required_score, where it starts calling a message spam) is SCL 5, and the scale
// is linear from a score of 0 (SCL 0) to 9/5 of the threshold (SCL 9); GTUBE's 1000
// is 9.
func SCL(score, threshold float64) int {
	if threshold <= 0 || math.IsNaN(threshold) {
		threshold = 5 // spamd's default required_score
	}
	if score <= 0 || math.IsNaN(score) {
		return 0
	}
	return min(int(math.Floor(score/threshold*5)), 9)
}

// OnEndOfData scores m and acts on its SCL.
func (f *Filter) OnEndOfData(ctx context.Context, _ *agents.Session, m *agents.Message) agents.Result {
	r, err := f.scorer.Check(ctx, m.Data)
	if err != nil {
		return agents.Rejected(replies.ContentFilterUnavailable("spamd"), "spamd at %s did not score the message: %v", f.scorer.Addr(), err)
	}
	scl := SCL(r.Score, r.Threshold)
	why := fmt.Sprintf("score %.1f / %.1f (%s)", r.Score, r.Threshold, strings.Join(r.Symbols, ","))
	// A sender filter's stamp counts too: the message keeps the higher SCL.
	if stamped, err := strconv.Atoi(m.HeaderValue(HeaderSCL)); err == nil && stamped > scl {
		scl = stamped
		why += fmt.Sprintf(", stamped SCL %d before", stamped)
	}
	switch {
	case f.deleteAt != Off && scl >= f.deleteAt:
		return agents.Dropped("SCL %d at or above the delete threshold %d: deleted; %s", scl, f.deleteAt, why)
	case f.rejectAt != Off && scl >= f.rejectAt:
		return agents.Rejected(replies.ContentRejected(f.rejectText), "SCL %d at or above the reject threshold %d: rejected; %s", scl, f.rejectAt, why)
	}
	m.SetHeader(HeaderSCL, strconv.Itoa(scl))
	if f.quarAt != Off && scl >= f.quarAt {
		was := strings.Join(m.Rcpts, ", ")
		m.SetHeader(HeaderQuarantine, "SCL "+strconv.Itoa(scl)+"; for "+was)
		m.Rcpts = []string{f.quarantine}
		return agents.Noted("SCL %d at or above the quarantine threshold %d: quarantined to %s instead of %s; %s", scl, f.quarAt, f.quarantine, was, why)
	}
	return agents.Noted("SCL %d; %s", scl, why)
}
