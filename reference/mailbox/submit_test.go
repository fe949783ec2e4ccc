package mailbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestReplyError(t *testing.T) {
	for _, tt := range []struct {
		line string
		code int
		enh  smtp.EnhancedCode
		text string
	}{
		{"550 5.7.1 Unable to relay", 550, smtp.EnhancedCode{5, 7, 1}, "Unable to relay"},
		{"554 Transaction failed", 554, smtp.NoEnhancedCode, "Transaction failed"},
		{"451 4.4.1 x.y", 451, smtp.EnhancedCode{4, 4, 1}, "x.y"},
		{"250 2.0.0 OK", 451, smtp.EnhancedCode{4, 4, 0}, "250 2.0.0 OK"}, // not a refusal: kept whole, temporary
		{"", 451, smtp.EnhancedCode{4, 4, 0}, ""},
	} {
		err := replyError(tt.line)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != tt.code || se.EnhancedCode != tt.enh || se.Message != tt.text {
			t.Errorf("replyError(%q) = %+v, want %d %v %q", tt.line, se, tt.code, tt.enh, tt.text)
		}
	}
}

// FuzzReplyError: any next hop's reply line becomes a refusal a client can be given:
// a 4yz or 5yz code, and an enhanced code of its class or none.
func FuzzReplyError(f *testing.F) {
	for _, s := range []string{"550 5.7.1 Unable to relay", "451 4.4.1", "554", "5", "550 5.x.1 t", "450 5.1.1 wrong class", "999 9.9.9 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var se *smtp.SMTPError
		if !errors.As(replyError(line), &se) {
			t.Fatalf("%q: not an SMTP error", line)
		}
		if se.Code < 400 || se.Code > 599 {
			t.Fatalf("%q: code %d", line, se.Code)
		}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode[0] != se.Code/100 {
			t.Fatalf("%q: enhanced code %v of another class than %d", line, se.EnhancedCode, se.Code)
		}
		if strings.ContainsAny(se.Message, "\r\n") && !strings.ContainsAny(line, "\r\n") {
			t.Fatalf("%q: message %q", line, se.Message)
		}
	})
}
