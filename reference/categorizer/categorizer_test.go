package categorizer_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/scenario"
)

var recipients = []scenario.Recipient{
	{Mail: "alice@contoso.test", Proxies: []string{"a.smith@contoso.test", "alice@sales.contoso.test"}, Mailbox: "MBX1"},
	{Mail: "bob@contoso.test", Mailbox: "MBX2"},
	{Mail: "carol@contoso.test", Mailbox: "MBX1"},
	{Mail: "dave@contoso.test", Mailbox: "MBX2"},
	{Mail: "partner@contoso.test", Type: scenario.RecipientContact, External: "p@fabrikam.test", Proxies: []string{"p.alias@contoso.test"}},
	{Mail: "partner2@contoso.test", Type: scenario.RecipientContact, External: "p@fabrikam.test"},
	// Invalid objects: a mailbox user without homeMDB, a contact without targetAddress.
	{Mail: "nohome@contoso.test"},
	{Mail: "notarget@contoso.test", Type: scenario.RecipientContact},
	// Groups.
	{Mail: "pair@contoso.test", Type: scenario.RecipientGroup, Members: []string{"alice@contoso.test", "bob@contoso.test"}},
	{Mail: "outer@contoso.test", Type: scenario.RecipientGroup, Members: []string{"inner@contoso.test", "carol@contoso.test", "partner@contoso.test"}},
	{Mail: "inner@contoso.test", Type: scenario.RecipientGroup, Members: []string{"carol@contoso.test", "dave@contoso.test"}},
	{Mail: "ring1@contoso.test", Type: scenario.RecipientGroup, Members: []string{"ring2@contoso.test", "alice@contoso.test"}},
	{Mail: "ring2@contoso.test", Type: scenario.RecipientGroup, Members: []string{"ring1@contoso.test", "bob@contoso.test", "alice@contoso.test"}},
	{Mail: "self@contoso.test", Type: scenario.RecipientGroup, Members: []string{"self@contoso.test", "dave@contoso.test"}},
	{Mail: "empty@contoso.test", Type: scenario.RecipientGroup},
	{Mail: "mixed@contoso.test", Type: scenario.RecipientGroup, Members: []string{"nohome@contoso.test", "bob@contoso.test", "notarget@contoso.test"}},
	{Mail: "lvl1@contoso.test", Type: scenario.RecipientGroup, Members: []string{"lvl2@contoso.test", "alice@contoso.test"}},
	{Mail: "lvl2@contoso.test", Type: scenario.RecipientGroup, Members: []string{"lvl3@contoso.test", "bob@contoso.test"}},
	{Mail: "lvl3@contoso.test", Type: scenario.RecipientGroup, Members: []string{"carol@contoso.test"}},
	// Forwarding (altRecipient): one hop, a chain, a loop.
	{Mail: "fwd@contoso.test", Mailbox: "MBX1", ForwardTo: "bob@contoso.test"},
	{Mail: "chain@contoso.test", Mailbox: "MBX1", ForwardTo: "fwd@contoso.test"},
	{Mail: "loopa@contoso.test", Mailbox: "MBX1", ForwardTo: "loopb@contoso.test"},
	{Mail: "loopb@contoso.test", Mailbox: "MBX2", ForwardTo: "loopa@contoso.test"},
}

func forwarded(r categorizer.Result, via ...string) categorizer.Result {
	r.ForwardedFrom = via
	return r
}

// start runs the directory on a free loopback port with a client to it.
func start(t testing.TB, rcpts []scenario.Recipient) (*ldapfake.Server, *directory.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := ldapfake.Start(ctx, "127.0.0.1:0", rcpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dc := directory.New("ldap://"+srv.Addr(), srv.BaseDN(), directory.WithTimeout(2*time.Second))
	t.Cleanup(func() { _ = dc.Close() })
	return srv, dc
}

func newFake() *clock.Fake { return clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

func mbx(orig, addr, server string, from ...string) categorizer.Result {
	return categorizer.Result{Original: orig, Address: addr, Kind: categorizer.KindMailbox, Server: server, ExpandedFrom: from}
}

func ext(orig, addr string, from ...string) categorizer.Result {
	return categorizer.Result{Original: orig, Address: addr, Kind: categorizer.KindExternal, ExpandedFrom: from}
}

func failed(orig, addr, status string, from ...string) categorizer.Result {
	return categorizer.Result{Original: orig, Address: addr, Kind: categorizer.KindFailed, Status: status, ExpandedFrom: from}
}

// normalise makes results comparable: nil and empty paths alike, reasons only checked
// to be present on failures.
func normalise(t *testing.T, rs []categorizer.Result) []categorizer.Result {
	t.Helper()
	var out []categorizer.Result
	for _, r := range rs {
		if r.Kind == categorizer.KindFailed && r.Reason == "" {
			t.Errorf("failed result %+v has no reason", r)
		}
		if r.Kind != categorizer.KindFailed && (r.Status != "" || r.Reason != "") {
			t.Errorf("%s result %+v has a status", r.Kind, r)
		}
		r.Reason = ""
		if len(r.ExpandedFrom) == 0 {
			r.ExpandedFrom = nil
		}
		if len(r.ForwardedFrom) == 0 {
			r.ForwardedFrom = nil
		}
		out = append(out, r)
	}
	return out
}

func TestResolve(t *testing.T) {
	_, dc := start(t, recipients)
	const (
		team  = "pair@contoso.test"
		outer = "outer@contoso.test"
		inner = "inner@contoso.test"
		ring1 = "ring1@contoso.test"
		ring2 = "ring2@contoso.test"
	)
	tests := []struct {
		name  string
		rcpts []string
		want  []categorizer.Result
	}{
		{"primary", []string{"alice@contoso.test"},
			[]categorizer.Result{mbx("alice@contoso.test", "alice@contoso.test", "MBX1")}},
		{"primary any case", []string{"Alice@CONTOSO.test"},
			[]categorizer.Result{mbx("Alice@CONTOSO.test", "alice@contoso.test", "MBX1")}},
		{"secondary proxy rewritten, original kept", []string{"A.Smith@Contoso.TEST"},
			[]categorizer.Result{mbx("A.Smith@Contoso.TEST", "alice@contoso.test", "MBX1")}},
		{"secondary proxy in another domain", []string{"alice@sales.contoso.test"},
			[]categorizer.Result{mbx("alice@sales.contoso.test", "alice@contoso.test", "MBX1")}},
		{"two proxies of one mailbox: first wins", []string{"a.smith@contoso.test", "alice@contoso.test", "ALICE@contoso.test"},
			[]categorizer.Result{mbx("a.smith@contoso.test", "alice@contoso.test", "MBX1")}},
		{"unknown", []string{"nobody@contoso.test"},
			[]categorizer.Result{failed("nobody@contoso.test", "nobody@contoso.test", categorizer.StatusUnknown)}},
		{"unknown given twice", []string{"nobody@contoso.test", "NOBODY@contoso.test"},
			[]categorizer.Result{failed("nobody@contoso.test", "nobody@contoso.test", categorizer.StatusUnknown)}},
		{"filter metacharacters are an address, not a filter", []string{"*", "a)(mail=*"},
			[]categorizer.Result{failed("*", "*", categorizer.StatusUnknown), failed("a)(mail=*", "a)(mail=*", categorizer.StatusUnknown)}},
		{"group of two", []string{team},
			[]categorizer.Result{mbx(team, "alice@contoso.test", "MBX1", team), mbx(team, "bob@contoso.test", "MBX2", team)}},
		{"direct recipient before its group", []string{"bob@contoso.test", team},
			[]categorizer.Result{mbx("bob@contoso.test", "bob@contoso.test", "MBX2"), mbx(team, "alice@contoso.test", "MBX1", team)}},
		{"nested groups, shared member once", []string{outer},
			[]categorizer.Result{
				mbx(outer, "carol@contoso.test", "MBX1", outer, inner),
				mbx(outer, "dave@contoso.test", "MBX2", outer, inner),
				ext(outer, "p@fabrikam.test", outer),
			}},
		{"inner group given too: expanded once", []string{outer, inner},
			[]categorizer.Result{
				mbx(outer, "carol@contoso.test", "MBX1", outer, inner),
				mbx(outer, "dave@contoso.test", "MBX2", outer, inner),
				ext(outer, "p@fabrikam.test", outer),
			}},
		{"group cycle terminates, members once", []string{ring1},
			[]categorizer.Result{
				mbx(ring1, "bob@contoso.test", "MBX2", ring1, ring2),
				mbx(ring1, "alice@contoso.test", "MBX1", ring1, ring2),
			}},
		{"cycle entered from the other side", []string{ring2},
			[]categorizer.Result{
				mbx(ring2, "alice@contoso.test", "MBX1", ring2, ring1),
				mbx(ring2, "bob@contoso.test", "MBX2", ring2),
			}},
		{"group containing itself", []string{"self@contoso.test"},
			[]categorizer.Result{mbx("self@contoso.test", "dave@contoso.test", "MBX2", "self@contoso.test")}},
		{"empty group: nothing", []string{"empty@contoso.test"}, nil},
		{"contact", []string{"partner@contoso.test"},
			[]categorizer.Result{ext("partner@contoso.test", "p@fabrikam.test")}},
		{"contact by secondary proxy", []string{"P.Alias@contoso.test"},
			[]categorizer.Result{ext("P.Alias@contoso.test", "p@fabrikam.test")}},
		{"two contacts, one target: one copy", []string{"partner@contoso.test", "partner2@contoso.test"},
			[]categorizer.Result{ext("partner@contoso.test", "p@fabrikam.test")}},
		{"invalid object: mailbox without homeMDB", []string{"nohome@contoso.test"},
			[]categorizer.Result{failed("nohome@contoso.test", "nohome@contoso.test", categorizer.StatusInvalidObject)}},
		{"invalid object: contact without target", []string{"NoTarget@contoso.test"},
			[]categorizer.Result{failed("NoTarget@contoso.test", "notarget@contoso.test", categorizer.StatusInvalidObject)}},
		{"forwarded to another mailbox", []string{"fwd@contoso.test"},
			[]categorizer.Result{forwarded(mbx("fwd@contoso.test", "bob@contoso.test", "MBX2"), "fwd@contoso.test")}},
		{"forwarding chain", []string{"chain@contoso.test"},
			[]categorizer.Result{forwarded(mbx("chain@contoso.test", "bob@contoso.test", "MBX2"), "chain@contoso.test", "fwd@contoso.test")}},
		{"forwarding loop fails, does not circle", []string{"loopa@contoso.test"},
			[]categorizer.Result{forwarded(failed("loopa@contoso.test", "loopb@contoso.test", categorizer.StatusLoop), "loopa@contoso.test")}},
		{"forwarding loop entered from the other side", []string{"LoopB@contoso.test"},
			[]categorizer.Result{forwarded(failed("LoopB@contoso.test", "loopa@contoso.test", categorizer.StatusLoop), "loopb@contoso.test")}},
		{"invalid members fail alone", []string{"mixed@contoso.test"},
			[]categorizer.Result{
				failed("mixed@contoso.test", "nohome@contoso.test", categorizer.StatusInvalidObject, "mixed@contoso.test"),
				mbx("mixed@contoso.test", "bob@contoso.test", "MBX2", "mixed@contoso.test"),
				failed("mixed@contoso.test", "notarget@contoso.test", categorizer.StatusInvalidObject, "mixed@contoso.test"),
			}},
		{"mixed envelope", []string{"nobody@contoso.test", team, "partner@contoso.test", "a.smith@contoso.test"},
			[]categorizer.Result{
				failed("nobody@contoso.test", "nobody@contoso.test", categorizer.StatusUnknown),
				mbx(team, "alice@contoso.test", "MBX1", team),
				mbx(team, "bob@contoso.test", "MBX2", team),
				ext("partner@contoso.test", "p@fabrikam.test"),
			}},
		{"no recipients", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh categorizer per case, so each one also runs against the directory.
			c := categorizer.New(dc, categorizer.WithClock(newFake()))
			got, err := c.Resolve(context.Background(), tc.rcpts)
			if err != nil {
				t.Fatal(err)
			}
			if got := normalise(t, got); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve(%q):\n got %+v\nwant %+v", tc.rcpts, got, tc.want)
			}
			// The same answer from the cache.
			again, err := c.Resolve(context.Background(), tc.rcpts)
			if err != nil {
				t.Fatal(err)
			}
			if again := normalise(t, again); !reflect.DeepEqual(again, tc.want) {
				t.Errorf("Resolve(%q) from cache:\n got %+v\nwant %+v", tc.rcpts, again, tc.want)
			}
		})
	}
}

// TestResultsNotShared checks a caller may change a Result's path without touching
// another's.
func TestResultsNotShared(t *testing.T) {
	_, dc := start(t, recipients)
	c := categorizer.New(dc)
	got, err := c.Resolve(context.Background(), []string{"outer@contoso.test"})
	if err != nil || len(got) != 3 {
		t.Fatalf("got %+v, %v", got, err)
	}
	got[0].ExpandedFrom[0] = "changed"
	got[0].ExpandedFrom = append(got[0].ExpandedFrom, "more")
	if got[1].ExpandedFrom[0] != "outer@contoso.test" || got[2].ExpandedFrom[0] != "outer@contoso.test" {
		t.Errorf("paths share memory: %+v", got)
	}
}

func TestMaxDepth(t *testing.T) {
	_, dc := start(t, recipients)
	const l1, l2, l3 = "lvl1@contoso.test", "lvl2@contoso.test", "lvl3@contoso.test"
	tests := []struct {
		depth int
		want  []categorizer.Result
	}{
		{3, []categorizer.Result{
			mbx(l1, "carol@contoso.test", "MBX1", l1, l2, l3),
			mbx(l1, "bob@contoso.test", "MBX2", l1, l2),
			mbx(l1, "alice@contoso.test", "MBX1", l1),
		}},
		{2, []categorizer.Result{
			failed(l1, l3, categorizer.StatusLoop, l1, l2),
			mbx(l1, "bob@contoso.test", "MBX2", l1, l2),
			mbx(l1, "alice@contoso.test", "MBX1", l1),
		}},
		{1, []categorizer.Result{
			failed(l1, l2, categorizer.StatusLoop, l1),
			mbx(l1, "alice@contoso.test", "MBX1", l1),
		}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.depth), func(t *testing.T) {
			c := categorizer.New(dc, categorizer.WithMaxDepth(tc.depth))
			got, err := c.Resolve(context.Background(), []string{l1})
			if err != nil {
				t.Fatal(err)
			}
			if got := normalise(t, got); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOutageIsTemporary(t *testing.T) {
	srv, dc := start(t, recipients)
	c := categorizer.New(dc, categorizer.WithClock(newFake()))
	ctx := context.Background()
	if _, err := c.Resolve(ctx, []string{"alice@contoso.test"}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}

	for _, rcpts := range [][]string{
		{"bob@contoso.test"},
		{"nobody@contoso.test"}, // must not become "unknown"
		{"alice@contoso.test", "pair@contoso.test"},
	} {
		got, err := c.Resolve(ctx, rcpts)
		if err == nil {
			t.Fatalf("Resolve(%q) during outage = %+v, want an error", rcpts, got)
		}
		if !categorizer.IsTemporary(err) || !errors.Is(err, categorizer.ErrTemporary) {
			t.Errorf("Resolve(%q): %v is not temporary", rcpts, err)
		}
		if !directory.IsUnavailable(err) {
			t.Errorf("Resolve(%q): %v does not wrap the directory's error", rcpts, err)
		}
		if got != nil {
			t.Errorf("Resolve(%q) returned results with the error: %+v", rcpts, got)
		}
	}
	// What was cached before the outage is still served.
	got, err := c.Resolve(ctx, []string{"alice@contoso.test"})
	if err != nil || len(got) != 1 || got[0].Server != "MBX1" {
		t.Errorf("cached recipient during outage: %+v, %v", got, err)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = c.Resolve(ctx, []string{"bob@contoso.test", "nobody@contoso.test"})
	want := []categorizer.Result{
		mbx("bob@contoso.test", "bob@contoso.test", "MBX2"),
		failed("nobody@contoso.test", "nobody@contoso.test", categorizer.StatusUnknown),
	}
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got := normalise(t, got); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart:\n got %+v\nwant %+v", got, want)
	}
}

func TestTemporaryIsNotPermanent(t *testing.T) {
	if categorizer.IsTemporary(nil) || categorizer.IsTemporary(directory.ErrNotFound) {
		t.Error("IsTemporary true for nil or ErrNotFound")
	}
}

func TestTTL(t *testing.T) {
	srv, dc := start(t, recipients)
	const ttl = 5 * time.Minute
	clk := newFake()
	c := categorizer.New(dc, categorizer.WithClock(clk)) // default TTL
	ctx := context.Background()
	server := func() string {
		t.Helper()
		got, err := c.Resolve(ctx, []string{"A.Smith@contoso.test"})
		if err != nil || len(got) != 1 || got[0].Kind != categorizer.KindMailbox {
			t.Fatalf("got %+v, %v", got, err)
		}
		return got[0].Server
	}

	if s := server(); s != "MBX1" {
		t.Fatalf("server %s, want MBX1", s)
	}
	srv.SetHomeServer("alice@contoso.test", "MBX3")
	if s := server(); s != "MBX1" {
		t.Errorf("right after the move: server %s, want cached MBX1", s)
	}
	clk.Advance(ttl - time.Second)
	if s := server(); s != "MBX1" {
		t.Errorf("just before the TTL: server %s, want cached MBX1", s)
	}
	clk.Advance(2 * time.Second)
	if s := server(); s != "MBX3" {
		t.Errorf("after the TTL: server %s, want MBX3", s)
	}
	// The new answer is cached in turn.
	srv.SetHomeServer("alice@contoso.test", "MBX2")
	if s := server(); s != "MBX3" {
		t.Errorf("new answer not cached: server %s, want MBX3", s)
	}
}

// TestNegativeCache counts the directory's searches: "not found" is cached for the TTL
// like any answer.
func TestNegativeCache(t *testing.T) {
	srv, dc := start(t, recipients)
	clk := newFake()
	c := categorizer.New(dc, categorizer.WithClock(clk), categorizer.WithTTL(time.Minute))
	ctx := context.Background()
	const filter = "(proxyAddresses=smtp:nobody@contoso.test)"
	searches := func() int {
		n := 0
		for _, f := range srv.Searches() {
			if strings.EqualFold(f, filter) {
				n++
			}
		}
		return n
	}
	resolve := func() {
		t.Helper()
		got, err := c.Resolve(ctx, []string{"nobody@contoso.test"})
		if err != nil || len(got) != 1 || got[0].Status != categorizer.StatusUnknown {
			t.Fatalf("got %+v, %v", got, err)
		}
	}
	resolve()
	resolve()
	if n := searches(); n != 1 {
		t.Errorf("%d searches within the TTL, want 1", n)
	}
	clk.Advance(time.Minute)
	resolve()
	if n := searches(); n != 2 {
		t.Errorf("%d searches after the TTL, want 2", n)
	}
}

func TestNoCache(t *testing.T) {
	srv, dc := start(t, recipients)
	c := categorizer.New(dc, categorizer.WithClock(newFake()), categorizer.WithTTL(0))
	for range 2 {
		if _, err := c.Resolve(context.Background(), []string{"bob@contoso.test"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, f := range srv.Searches() {
		if strings.HasPrefix(f, "(proxyAddresses=") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d lookups with the cache off, want 2", n)
	}
}

// TestConcurrent runs Resolve from several goroutines (meant for -race).
func TestConcurrent(t *testing.T) {
	_, dc := start(t, recipients)
	clk := newFake()
	c := categorizer.New(dc, categorizer.WithClock(clk), categorizer.WithTTL(time.Minute))
	rcpts := []string{"outer@contoso.test", "pair@contoso.test", "nobody@contoso.test", "ring1@contoso.test"}
	want, err := c.Resolve(context.Background(), rcpts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				if i == 0 && j == 2 {
					clk.Advance(time.Minute) // expire everything mid-run
				}
				got, err := c.Resolve(context.Background(), rcpts)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("got %+v, want %+v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stubDir answers from a map, for objects the test directory cannot hold.
type stubDir map[string]*directory.Entry

func (s stubDir) Lookup(_ context.Context, addr string) (*directory.Entry, error) {
	if e, ok := s[strings.ToLower(addr)]; ok {
		return e, nil
	}
	if addr == "broken@contoso.test" {
		return nil, errors.New("unexpected answer")
	}
	return nil, fmt.Errorf("lookup %s: %w", addr, directory.ErrNotFound)
}

func TestObjectsBeyondTheTestDirectory(t *testing.T) {
	dir := stubDir{
		// A mail user: a user object with a target address and no mailbox here.
		"mailuser@contoso.test":  {DN: "CN=mu", Mail: "mailuser@contoso.test", Type: directory.TypeMailbox, External: "mu@fabrikam.test"},
		"noprimary@contoso.test": {DN: "CN=np", Type: directory.TypeMailbox, MailboxServer: "MBX1"},
		"odd@contoso.test":       {DN: "CN=odd", Mail: "odd@contoso.test", Type: "printer"},
		// A group whose member the directory no longer finds.
		"stale@contoso.test": {DN: "CN=stale", Mail: "stale@contoso.test", Type: directory.TypeGroup, Members: []string{"gone@contoso.test"}},
		"bad@contoso.test":   {DN: "CN=bad", Mail: "bad@contoso.test", Type: directory.TypeGroup, Members: []string{"broken@contoso.test"}},
	}
	c := categorizer.New(dir)
	got, err := c.Resolve(context.Background(), []string{"mailuser@contoso.test", "noprimary@contoso.test", "odd@contoso.test", "stale@contoso.test"})
	if err != nil {
		t.Fatal(err)
	}
	want := []categorizer.Result{
		ext("mailuser@contoso.test", "mu@fabrikam.test"),
		failed("noprimary@contoso.test", "noprimary@contoso.test", categorizer.StatusInvalidObject),
		failed("odd@contoso.test", "odd@contoso.test", categorizer.StatusInvalidObject),
		failed("stale@contoso.test", "gone@contoso.test", categorizer.StatusUnknown, "stale@contoso.test"),
	}
	if got := normalise(t, got); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	// An error that is not "not found" is taken as the directory failing: temporary.
	if got, err := c.Resolve(context.Background(), []string{"bad@contoso.test"}); !categorizer.IsTemporary(err) {
		t.Errorf("unexpected directory error: %+v, %v; want temporary", got, err)
	}
}

func TestOptionsIgnoreNonsense(t *testing.T) {
	_, dc := start(t, recipients)
	c := categorizer.New(dc, categorizer.WithClock(nil), categorizer.WithMaxDepth(0))
	got, err := c.Resolve(context.Background(), []string{"outer@contoso.test"})
	if err != nil || len(got) != 3 || slices.ContainsFunc(got, func(r categorizer.Result) bool { return r.Kind == categorizer.KindFailed }) {
		t.Errorf("got %+v, %v; want default clock and depth", got, err)
	}
}
