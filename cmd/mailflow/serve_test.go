package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// lines collects what serve prints, line by line, for the test to wait on.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
	}
}

// wait returns the first line that has every one of want, or fails after a while.
func (l *lines) wait(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l.mu.Lock()
		for _, line := range l.all {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				l.mu.Unlock()
				return line
			}
		}
		got := strings.Join(l.all, "\n")
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no line with %q:\n%s", want, got)
		}
		time.Sleep(10 * time.Millisecond) // polling what a goroutine prints, not a timing assertion
	}
}

// TestServe runs `mailflow serve --http` on a shipped scenario, sends a message to its
// Edge as a user would with swaks, and finds the message's way in the tracking lines
// printed after "ready" and the message in the recipient's mailbox on the live view.
func TestServe(t *testing.T) {
	s, err := loadScenario("../../scenarios/edge-smarthost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	out := &lines{}
	go out.read(pr)
	done := make(chan int, 1)
	go func() {
		done <- serve(ctx, "scenarios/edge-smarthost.yaml", s, serveOptions{http: "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
	}()
	out.wait(t, "ready")
	edge := strings.Fields(out.wait(t, "EDGE1", " smtp "))
	live := strings.Fields(out.wait(t, "listen live http "))

	msg := "From: Bob <bob@fabrikam.test>\r\nTo: alice@contoso.test\r\nSubject: watched\r\n\r\nhello\r\n"
	c, err := smtp.Dial(edge[len(edge)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("bob@fabrikam.test", []string{"alice@contoso.test"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	out.wait(t, " EDGE1 RECEIVE ", "from=<bob@fabrikam.test>", "to=alice@contoso.test")
	out.wait(t, " MBX1 DELIVER ", "to=alice@contoso.test")

	resp, err := http.Get("http://" + live[len(live)-1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"<td>alice@contoso.test</td><td>Bob &lt;bob@fabrikam.test&gt;</td><td>watched</td>", "<td>DELIVER</td>", "<svg"} {
		if !strings.Contains(page, want) {
			t.Errorf("live view lacks %q", want)
		}
	}
}
