package directory

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/scenario"
)

var recipients = []scenario.Recipient{
	{Mail: "alice@contoso.test", Proxies: []string{"a.smith@contoso.test"}, Mailbox: "MBX1", Password: "pw"},
	{Mail: "bob@contoso.test", Mailbox: "MBX2"},
	{Mail: "team@contoso.test", Type: scenario.RecipientGroup, Members: []string{"alice@contoso.test", "bob@contoso.test", "all@contoso.test"}},
	{Mail: "all@contoso.test", Type: scenario.RecipientGroup, Members: []string{"partner@contoso.test"}},
	{Mail: "partner@contoso.test", Type: scenario.RecipientContact, External: "p@fabrikam.test"},
}

func start(t *testing.T, opts ...Option) (*ldapfake.Server, *Client) {
	t.Helper()
	srv, err := ldapfake.Start(context.Background(), "127.206.0.1:0", recipients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c := New("ldap://"+srv.Addr(), srv.BaseDN(), opts...)
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}

func TestLookup(t *testing.T) {
	srv, c := start(t)
	tests := []struct {
		addr string
		want Entry // DN not compared
	}{
		{"alice@contoso.test", Entry{Mail: "alice@contoso.test", Type: TypeMailbox, MailboxServer: "MBX1"}},
		{"A.Smith@CONTOSO.test", Entry{Mail: "alice@contoso.test", Type: TypeMailbox, MailboxServer: "MBX1"}},
		{"BOB@contoso.test", Entry{Mail: "bob@contoso.test", Type: TypeMailbox, MailboxServer: "MBX2"}},
		{"team@contoso.test", Entry{Mail: "team@contoso.test", Type: TypeGroup,
			Members: []string{"alice@contoso.test", "bob@contoso.test", "all@contoso.test"}}},
		{"partner@contoso.test", Entry{Mail: "partner@contoso.test", Type: TypeContact, External: "p@fabrikam.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			e, err := c.Lookup(context.Background(), tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if e.DN == "" {
				t.Error("empty DN")
			}
			got := *e
			got.DN = ""
			slices.Sort(got.Members)
			slices.Sort(tc.want.Members)
			if got.Mail != tc.want.Mail || got.Type != tc.want.Type || got.MailboxServer != tc.want.MailboxServer ||
				got.External != tc.want.External || !slices.Equal(got.Members, tc.want.Members) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if want := "(proxyAddresses=smtp:A.Smith@CONTOSO.test)"; !slices.Contains(srv.Searches(), want) {
		t.Errorf("searches %v lack %s", srv.Searches(), want)
	}
}

func TestLookupNotFound(t *testing.T) {
	_, c := start(t)
	for _, addr := range []string{"nobody@contoso.test", "alice@fabrikam.test", "*", "a)(mail=*"} {
		_, err := c.Lookup(context.Background(), addr)
		if !errors.Is(err, ErrNotFound) || IsUnavailable(err) {
			t.Errorf("%s: %v, want ErrNotFound", addr, err)
		}
	}
}

// Exists answers as Lookup does, for every kind of recipient and every address form,
// in one search.
func TestExists(t *testing.T) {
	srv, c := start(t)
	for _, addr := range []string{"alice@contoso.test", "A.Smith@CONTOSO.test", "team@contoso.test", "partner@contoso.test"} {
		before := len(srv.Searches())
		if err := c.Exists(context.Background(), addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
		if n := len(srv.Searches()) - before; n != 1 {
			t.Errorf("%s: %d searches, want 1", addr, n)
		}
	}
	for _, addr := range []string{"nobody@contoso.test", "alice@fabrikam.test", "*", "a)(mail=*"} {
		if err := c.Exists(context.Background(), addr); !errors.Is(err, ErrNotFound) || IsUnavailable(err) {
			t.Errorf("%s: %v, want ErrNotFound", addr, err)
		}
	}
}

func TestMailboxMove(t *testing.T) {
	srv, c := start(t)
	srv.SetHomeServer("alice@contoso.test", "MBX9")
	e, err := c.Lookup(context.Background(), "a.smith@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	if e.MailboxServer != "MBX9" {
		t.Fatalf("MailboxServer = %q after the move, want MBX9", e.MailboxServer)
	}
}

func TestAuthenticate(t *testing.T) {
	_, c := start(t)
	tests := []struct {
		user, pw string
		want     error
	}{
		{"alice@contoso.test", "pw", nil},
		{"Alice@Contoso.TEST", "pw", nil},
		{"alice@contoso.test", "bad", ErrInvalidCredentials},
		{"alice@contoso.test", "", ErrInvalidCredentials},
		{"bob@contoso.test", "pw", ErrInvalidCredentials},
		{"nobody@contoso.test", "pw", ErrInvalidCredentials},
	}
	for _, tc := range tests {
		err := c.Authenticate(context.Background(), tc.user, tc.pw)
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s/%q: %v, want %v", tc.user, tc.pw, err, tc.want)
		}
	}
}

// CAT-006: an outage is a temporary failure, reported well within the timeout, and the
// same client recovers when the directory comes back.
func TestOutageAndRecovery(t *testing.T) {
	const timeout = 2 * time.Second
	srv, c := start(t, WithTimeout(timeout))
	ctx := context.Background()
	if _, err := c.Lookup(ctx, "alice@contoso.test"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // first on the broken connection, then on a refused dial
		begin := time.Now()
		_, err := c.Lookup(ctx, "alice@contoso.test")
		if !IsUnavailable(err) || errors.Is(err, ErrNotFound) {
			t.Fatalf("during outage: %v, want unavailable", err)
		}
		if d := time.Since(begin); d >= timeout/2 {
			t.Errorf("outage reported after %v", d)
		}
	}
	if err := c.Authenticate(ctx, "alice@contoso.test", "pw"); !IsUnavailable(err) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("authenticate during outage: %v, want unavailable", err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "alice@contoso.test"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// A server that accepts and then says nothing must cost one timeout, not a hang.
func TestSilentServerTimesOut(t *testing.T) {
	addr := listen(t, "127.206.0.2:0", func(net.Conn) {})

	const timeout = 200 * time.Millisecond
	c := New("ldap://"+addr, ldapfake.BaseDN, WithTimeout(timeout))
	defer c.Close()
	begin := time.Now()
	_, err := c.Lookup(context.Background(), "alice@contoso.test")
	if !IsUnavailable(err) {
		t.Fatalf("silent server: %v, want unavailable", err)
	}
	if d := time.Since(begin); d > 4*timeout {
		t.Errorf("took %v with timeout %v", d, timeout)
	}
}

func TestUnavailable(t *testing.T) {
	srv, good := start(t)
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.206.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		c    *Client
		ctx  context.Context
	}{
		{"nothing listening", New("ldap://"+closed, ldapfake.BaseDN), context.Background()},
		{"wrong service password", New("ldap://"+srv.Addr(), srv.BaseDN(),
			WithBind("CN=alice,OU=Users,DC=mailflow,DC=test", "bad")), context.Background()},
		{"base DN missing", New("ldap://"+srv.Addr(), "DC=elsewhere,DC=test"), context.Background()},
		{"context canceled", good, canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Lookup(tc.ctx, "alice@contoso.test")
			if !IsUnavailable(err) || errors.Is(err, ErrNotFound) {
				t.Fatalf("%v, want unavailable", err)
			}
		})
	}
}

func TestWithBind(t *testing.T) {
	_, c := start(t, WithBind("CN=alice,OU=Users,DC=mailflow,DC=test", "pw"))
	if _, err := c.Lookup(context.Background(), "bob@contoso.test"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentLookups(t *testing.T) {
	_, c := start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Lookup(context.Background(), "team@contoso.test"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// listen accepts connections at addr and hands each to serve; the connections are
// closed when the test ends.
func listen(t *testing.T, addr string, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serve(conn) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, conn := range held {
			_ = conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// slowProxy relays to addr, holding each chunk of the directory's answers for delay.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	return listen(t, "127.206.0.3:0", func(c net.Conn) {
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			time.Sleep(delay) // the directory's slowness, not the test's
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
	})
}

// A burst of lookups larger than the pool waits its turn: the timeout bounds the
// directory's answer, not the queue for a connection, so a slow but answering
// directory is not reported unavailable.
func TestBurstQueuesForThePool(t *testing.T) {
	srv, err := ldapfake.Start(context.Background(), "127.206.0.4:0", recipients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	// Each search takes 200 ms at the proxy, well inside the timeout even on a loaded
	// machine; the burst as a whole takes several timeouts.
	const timeout = time.Second
	c := New("ldap://"+slowProxy(t, srv.Addr(), 200*time.Millisecond), srv.BaseDN(), WithTimeout(timeout))
	t.Cleanup(func() { _ = c.Close() })
	const n = 6 * PoolSize // each two searches: far more than one timeout in the queue
	errs := make(chan error, n)
	begin := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Lookup(context.Background(), "alice@contoso.test")
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("lookup %d: %v", i, err)
		}
	}
	if d := time.Since(begin); d < timeout {
		t.Fatalf("the burst took %v, less than one timeout: it did not queue", d)
	}
}
