// Package agents is the Edge's agent pipeline: the anti-spam agents run at the SMTP
// events Exchange raises (connect, MAIL, RCPT, end-of-data), each at its place in the
// fixed order of FILTER-018, and are skipped for sessions that hold
// ms-Exch-Bypass-Anti-Spam (authenticated users and the organisation's own servers,
// FILTER-007). Every action an agent takes is a trace event naming it: a refusal is a
// FAIL with Source AGENT, a deleted message a DROP, anything else an AGENTINFO. At
// end-of-data an agent may also change the message and its recipients, and at RCPT
// the recipient (inbound address rewriting). The Malware, Edge Rules and address
// rewriting agents are not anti-spam and act on every session (Everyone). The agents
// themselves are in the packages below this one (connfilter, senderfilter, senderid,
// attachfilter, antivirus, edgerules, rewrite); the receive connector (reference/smtpd) calls
// the pipeline. Serves FILTER-007 and FILTER-018.
package agents
