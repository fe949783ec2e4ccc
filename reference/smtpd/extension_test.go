package smtpd

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/scenario"
)

// TestExtension pipelines the extension's command between others: its replies come in
// command order, a client it does not serve finds the command unknown, and EHLO
// advertises it.
func TestExtension(t *testing.T) {
	ext := Extension{Keyword: "XTEST", Verb: "xtest", Answer: func(_ netip.Addr, args string) (int, []string) {
		if args == "deny" {
			return 0, nil
		}
		return 250, []string{"ARGS " + args, "2.0.0 done"}
	}}
	srv := New("EDGE1", "edge1.contoso.test", []Connector{{Name: "Internet", Permissions: []scenario.Permission{scenario.PermAnonymous}}}, WithExtension(ext))
	c, err := net.Dial("tcp", serve(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("EHLO client.test\r\nXTEST a b\r\nNOOP\r\nXTEST deny\r\nQUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	got := string(b)
	for _, tc := range []struct{ name, want string }{
		{"advertised after EHLO", "250 XTEST\r\n"},
		{"answered, then the NOOP", "250-ARGS a b\r\n250 2.0.0 done\r\n250 2.0.0 OK\r\n"},
		{"unknown to a client not served", "500 5.5.1 Command unrecognized\r\n221"},
	} {
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q not in\n%s", tc.name, tc.want, got)
		}
	}
}

// serve runs srv on a fresh loopback port until the test ends and returns its address.
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.203.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}
