package relaysuite

// vector is one open-relay trick (SEC-004): an envelope an unauthenticated client
// sends hoping the server delivers to a host outside the organisation.
type vector struct {
	Name string
	From string
	Rcpt string
}

// Vectors is the catalog kept beside the relay suite. contoso.test is the local
// authoritative domain, fabrikam.test the remote victim whose MX records every
// delivery attempt.
var Vectors = []vector{
	{"plain remote recipient", "bob@fabrikam.test", "victim@fabrikam.test"},
	{"percent hack", "bob@fabrikam.test", "victim%fabrikam.test@contoso.test"},
	{"bang path", "bob@fabrikam.test", "fabrikam.test!victim@contoso.test"},
	{"double at", "bob@fabrikam.test", "victim@fabrikam.test@contoso.test"},
	{"quoted local part", "bob@fabrikam.test", `"victim@fabrikam.test"@contoso.test`},
	{"source route", "bob@fabrikam.test", "@contoso.test:victim@fabrikam.test"},
	{"IP literal of the victim MX", "bob@fabrikam.test", "victim@[127.1.0.10]"},
	{"trailing dot", "bob@fabrikam.test", "victim@fabrikam.test."},
	{"letter case", "bob@fabrikam.test", "Victim@FABRIKAM.TEST"},
	{"empty sender", "", "victim@fabrikam.test"},
	{"local-domain sender", "alice@contoso.test", "victim@fabrikam.test"},
	{"percent hack with local sender", "alice@contoso.test", "victim%fabrikam.test@contoso.test"},
}
