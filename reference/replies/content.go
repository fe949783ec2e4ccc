package replies

import "github.com/emersion/go-smtp"

// ContentRejected refuses at end-of-data a message whose SCL is at or above the
// content filter's reject threshold (FILTER-013), with Exchange's default text unless
// the server's RejectionResponse replaces it.
func ContentRejected(text string) *smtp.SMTPError {
	if text == "" {
		text = "Message rejected due to content restrictions"
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: text}
}

// ContentFilterUnavailable answers end-of-data when the spam filter cannot score the
// message: the client keeps it and tries again, so nothing is accepted unscored or
// lost (FILTER-013).
func ContentFilterUnavailable(filter string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Temporary content filter failure: " + filter + " did not score the message, try again later"}
}
