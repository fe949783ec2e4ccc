package scenario

import (
	"fmt"
	"strconv"
	"strings"
)

// ReplyCode is what `expect: rejected:` names: a basic reply code (550), an enhanced
// status code (5.1.1), or both (550 5.1.1). A refusal matches when every part given is
// its own: "5.1.1" holds for "550 5.1.1 User unknown" and for "554 5.1.1 ...".
type ReplyCode struct {
	// Basic is the three-digit code, 0 when not given.
	Basic int
	// Enhanced is "class.subject.detail", "" when not given.
	Enhanced string
}

// replyCodeWant says what a rejected: value may be; every problem ends with it.
const replyCodeWant = `want a basic code (550), an enhanced code (5.1.1) or both ("550 5.1.1")`

// ParseReplyCode reads a rejected: value. The class of each part must be 4 or 5 (a
// refusal), and the two agree when both are given.
func ParseReplyCode(s string) (ReplyCode, error) {
	f := strings.Fields(s)
	var c ReplyCode
	basic := ""
	switch {
	case len(f) == 1 && strings.Contains(f[0], "."):
		c.Enhanced = f[0]
	case len(f) == 1:
		basic = f[0]
	case len(f) == 2:
		basic, c.Enhanced = f[0], f[1]
	default:
		return ReplyCode{}, fmt.Errorf("%q is not a reply code: %s", s, replyCodeWant)
	}
	if basic != "" {
		n, err := strconv.Atoi(basic)
		if err != nil || len(basic) != 3 || basic[0] == '+' || basic[0] == '-' {
			return ReplyCode{}, fmt.Errorf("%q is not a reply code: %s", s, replyCodeWant)
		}
		if n < 400 || n > 599 {
			return ReplyCode{}, fmt.Errorf("%q is not a refusal's reply code (4yz or 5yz): %s", s, replyCodeWant)
		}
		c.Basic = n
	}
	if c.Enhanced != "" {
		m := enhancedCode.FindStringSubmatch(c.Enhanced)
		if m == nil || m[1] == "2" {
			return ReplyCode{}, fmt.Errorf("%q is not a refusal's enhanced code (4.x.x or 5.x.x): %s", s, replyCodeWant)
		}
		if c.Basic != 0 && strconv.Itoa(c.Basic/100) != m[1] {
			return ReplyCode{}, fmt.Errorf("%q: class %s of %s does not match reply code %d", s, m[1], c.Enhanced, c.Basic)
		}
	}
	return c, nil
}

// Matches says whether a reply with this code and enhanced code ("" when it had
// none) is the one named.
func (c ReplyCode) Matches(code int, enhanced string) bool {
	return (c.Basic == 0 || c.Basic == code) && (c.Enhanced == "" || c.Enhanced == enhanced)
}

func (c ReplyCode) String() string {
	switch {
	case c.Basic == 0:
		return c.Enhanced
	case c.Enhanced == "":
		return strconv.Itoa(c.Basic)
	}
	return strconv.Itoa(c.Basic) + " " + c.Enhanced
}
