package contentfilter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/contentfilter"
	"github.com/mailflow/mailflow/reference/spamc"
	"github.com/mailflow/mailflow/trace"
)

type scorer struct {
	r   spamc.Result
	err error
}

func (s scorer) Check(context.Context, []byte) (spamc.Result, error) { return s.r, s.err }
func (s scorer) Addr() string                                        { return "127.0.0.1:783" }

func TestSCL(t *testing.T) {
	for _, tc := range []struct {
		score, threshold float64
		want             int
	}{{-3, 5, 0}, {0, 5, 0}, {0.9, 5, 0}, {1, 5, 1}, {4.9, 5, 4}, {5, 5, 5}, {8, 5, 8}, {9, 5, 9}, {1000, 5, 9}, {3, 0, 3}} {
		if got := contentfilter.SCL(tc.score, tc.threshold); got != tc.want {
			t.Errorf("SCL(%v, %v) = %d, want %d", tc.score, tc.threshold, got, tc.want)
		}
	}
}

// TestThresholds: the highest threshold the SCL reaches acts: delete (a DROP), reject
// (550 5.7.1 with Exchange's text), quarantine (the quarantine mailbox alone), or
// delivery with the SCL recorded; a spamd that does not answer is 451 4.3.0, and a
// session that bypasses anti-spam is not scored.
func TestThresholds(t *testing.T) {
	all := []contentfilter.Option{contentfilter.WithDelete(9), contentfilter.WithReject(7, ""), contentfilter.WithQuarantine(6, "quarantine@contoso.test")}
	for _, tc := range []struct {
		name    string
		score   float64
		err     error
		bypass  bool
		wantErr string // "" for accepted
		rcpts   []string
		scl     string
		event   trace.Type
	}{
		{"ham", 1.2, nil, false, "", []string{"alice@contoso.test"}, "1", trace.AgentInfo},
		{"junk", 4.2, nil, false, "", []string{"alice@contoso.test"}, "4", trace.AgentInfo},
		{"quarantine", 6.1, nil, false, "", []string{"quarantine@contoso.test"}, "6", trace.AgentInfo},
		{"reject", 7.5, nil, false, "550 5.7.1 Message rejected due to content restrictions", nil, "", trace.Fail},
		{"delete", 1000, nil, false, agents.ErrDropped.Error(), nil, "", trace.Drop},
		{"spamd down", 0, errors.New("connection refused"), false, "451 4.3.0", nil, "", trace.Fail},
		{"bypass", 1000, nil, true, "", []string{"alice@contoso.test"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := trace.NewLog(nil)
			f := contentfilter.New(scorer{spamc.Result{Score: tc.score, Threshold: 5}, tc.err}, all...)
			p := agents.New("EDGE1", []agents.Agent{f}, agents.WithTrace(log))
			s, err := p.Connect(context.Background(), agents.Conn{Bypass: func() bool { return tc.bypass }})
			if err != nil {
				t.Fatal(err)
			}
			m := &agents.Message{From: "bob@fabrikam.test", Rcpts: []string{"alice@contoso.test"}, Data: []byte("Subject: x\r\n\r\nx\r\n")}
			err = s.EndOfData(context.Background(), m)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("EndOfData: %v", err)
				}
				if !slices.Equal(m.Rcpts, tc.rcpts) || m.HeaderValue(contentfilter.HeaderSCL) != tc.scl {
					t.Errorf("recipients %v, SCL %q; want %v, %q", m.Rcpts, m.HeaderValue(contentfilter.HeaderSCL), tc.rcpts, tc.scl)
				}
			} else if err == nil || !strings.Contains(reply(err), tc.wantErr) {
				t.Fatalf("EndOfData: %v; want %q", err, tc.wantErr)
			}
			var se *smtp.SMTPError
			if errors.As(err, &se) && tc.err != nil && !strings.Contains(se.Message, "spamd") {
				t.Errorf("reply %q does not name spamd", se.Message)
			}
			evs := log.Events()
			if tc.event == "" {
				if len(evs) != 0 {
					t.Errorf("events %+v; want none", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Type != tc.event || evs[0].Agent != contentfilter.Name {
				t.Fatalf("events %+v; want one %s naming %s", evs, tc.event, contentfilter.Name)
			}
		})
	}
}

// TestStampRaised: a sender filter's stamp above the score is kept, once.
func TestStampRaised(t *testing.T) {
	f := contentfilter.New(scorer{r: spamc.Result{Score: 1, Threshold: 5}})
	s, _ := agents.New("EDGE1", []agents.Agent{f}).Connect(context.Background(), agents.Conn{})
	m := &agents.Message{Rcpts: []string{"a@contoso.test"}}
	m.AddHeader(contentfilter.HeaderSCL, "6")
	if err := s.EndOfData(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if h := string(m.Header()); strings.Count(h, contentfilter.HeaderSCL) != 1 || !strings.Contains(h, contentfilter.HeaderSCL+": 6") {
		t.Errorf("header %q; want the SCL of 6 once", h)
	}
}

// reply is err as the client reads it.
func reply(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return err.Error()
}
