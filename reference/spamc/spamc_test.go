package spamc_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/reference/spamc"
)

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		want        spamc.Result
		err         string
	}{
		{"spam with symbols", "SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: True ; 1003.3 / 5.0\r\n\r\nGTUBE,MISSING_DATE",
			spamc.Result{Spam: true, Score: 1003.3, Threshold: 5, Symbols: []string{"GTUBE", "MISSING_DATE"}}, ""},
		{"ham, no symbols (CHECK)", "SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n",
			spamc.Result{Score: -0.1, Threshold: 5}, ""},
		{"body longer than announced", "SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: Yes ; 7 / 5\r\n\r\nGTUBE,EXTRA",
			spamc.Result{Spam: true, Score: 7, Threshold: 5, Symbols: []string{"GTUBE"}}, ""},
		{"refused", "SPAMD/1.0 76 Bad header line: Content-length: x\r\n", spamc.Result{}, "76 Bad header line"},
		{"no status line", "hello", spamc.Result{}, "without a status line"},
		{"not spamd", "HTTP/1.1 200 OK\r\n\r\n", spamc.Result{}, "not a spamd status line"},
		{"no Spam field", "SPAMD/1.1 0 EX_OK\r\n\r\n", spamc.Result{}, "without a Spam field"},
		{"bad score", "SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5.0\r\n\r\n", spamc.Result{}, "bad Spam field"},
		{"bad verdict", "SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5.0\r\n\r\n", spamc.Result{}, "bad Spam field"},
		{"short body", "SPAMD/1.1 0 EX_OK\r\nContent-length: 50\r\nSpam: True ; 6 / 5\r\n\r\nGTUBE", spamc.Result{}, "Content-length says 50"},
		{"header not ended", "SPAMD/1.1 0 EX_OK\r\nSpam: True ; 6 / 5\r\n", spamc.Result{}, "does not end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := spamc.ParseReply([]byte(tc.reply))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseReply = %+v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got.Spam != tc.want.Spam || got.Score != tc.want.Score || got.Threshold != tc.want.Threshold || !slices.Equal(got.Symbols, tc.want.Symbols) {
				t.Fatalf("ParseReply = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte("SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: True ; 1003.3 / 5.0\r\n\r\nGTUBE,MISSING_DATE"))
	f.Add([]byte("SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n"))
	f.Add([]byte("SPAMD/1.0 76 Bad header line\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := spamc.ParseReply(b)
		if err != nil {
			return
		}
		// A verdict read is a verdict spamd could have sent: finite scores, names
		// without separators.
		if r.Score-r.Score != 0 || r.Threshold-r.Threshold != 0 {
			t.Fatalf("ParseReply(%q) = %+v: a score that is not finite", b, r)
		}
		for _, s := range r.Symbols {
			if s == "" || strings.ContainsAny(s, ",\r\n") {
				t.Fatalf("ParseReply(%q): symbol %q", b, s)
			}
		}
	})
}

// need starts a spamd for the test, stopped when it ends. It is started here rather
// than in TestMain, which fuzzing workers also run and are killed out of.
func need(t *testing.T) *spamc.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := spamdaemon.Start(ctx)
	if errors.Is(err, spamdaemon.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	return spamc.New(d.Addr())
}

// TestRealDaemon: against spamd with its shipped rules, GTUBE is spam and a plain
// message is not, and PING answers.
func TestRealDaemon(t *testing.T) {
	c := need(t)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	head := "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: lunch\r\nDate: Mon, 7 Dec 2026 12:00:00 +0000\r\nMessage-ID: <a@fabrikam.test>\r\n\r\n"
	for _, tc := range []struct {
		name, body string
		spam       bool
		symbol     string
	}{
		{"GTUBE", spamdaemon.GTUBE + "\r\n", true, "GTUBE"},
		{"GTUBE on a long line in a longer body", strings.Repeat("Hello there.\r\n", 200) + "see: " + spamdaemon.GTUBE + "\r\n", true, "GTUBE"},
		{"plain", "Shall we have lunch at noon on Tuesday?\r\n", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Check(ctx, []byte(head+tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if r.Spam != tc.spam || (tc.symbol != "" && !slices.Contains(r.Symbols, tc.symbol)) {
				t.Fatalf("Check = %+v; want spam %v with %q", r, tc.spam, tc.symbol)
			}
			if r.Threshold != 5 {
				t.Errorf("threshold %v, want spamd's default 5.0", r.Threshold)
			}
		})
	}
}

// TestUnreachable: a port nobody listens on and a server that never answers are
// errors naming spamd and its address, within the timeout.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := l.Addr().String()
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l2.Addr().String()
	l2.Close()
	for _, addr := range []string{closed, silent} {
		start := time.Now()
		_, err := spamc.New(addr, spamc.WithTimeout(300*time.Millisecond)).Check(context.Background(), []byte("Subject: x\r\n\r\nx\r\n"))
		if err == nil || !strings.Contains(err.Error(), "spamd "+addr) {
			t.Errorf("Check at %s: %v; want an error naming spamd %s", addr, err, addr)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("Check at %s took %v", addr, time.Since(start))
		}
	}
}
