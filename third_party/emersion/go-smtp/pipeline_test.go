package smtp

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// pipeServer accepts one connection, greets, answers EHLO with PIPELINING, then reads
// every command up to DATA before it answers any of them with replies; after a 354 it
// reads the message up to the lone dot and answers final. It sends what it read.
func pipeServer(t *testing.T, replies []string, final string) (string, <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []string, 1)
	go func() {
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		var lines []string
		// readLine returns the next line, or "EOF" when there is none.
		readLine := func() string {
			l, err := r.ReadString('\n')
			if err != nil {
				return "EOF"
			}
			l = strings.TrimRight(l, "\r\n")
			lines = append(lines, l)
			return l
		}
		conn.Write([]byte("220 pipe.test ESMTP\r\n"))
		readLine() // EHLO
		conn.Write([]byte("250-pipe.test\r\n250 PIPELINING\r\n"))
		for {
			if l := readLine(); l == "DATA" || l == "EOF" {
				break
			}
		}
		conn.Write([]byte(strings.Join(replies, "\r\n") + "\r\n"))
		if strings.HasPrefix(replies[len(replies)-1], "354") {
			for {
				if l := readLine(); l == "." || l == "EOF" {
					break
				}
			}
			conn.Write([]byte(final + "\r\n"))
		}
		readLine() // QUIT or nothing
		got <- lines
	}()
	return ln.Addr().String(), got
}

func TestSendPipelined(t *testing.T) {
	tests := []struct {
		name      string
		replies   []string // to MAIL, each RCPT, DATA
		final     string
		wantMail  int // reply code of an error, 0 for none
		wantRcpt  []int
		wantData  bool // a DataCommand
		wantLines []string
	}{
		{
			name:     "one recipient refused",
			replies:  []string{"250 ok", "250 ok", "550 5.1.1 no such user", "354 go on"},
			final:    "250 2.0.0 queued",
			wantRcpt: []int{0, 550}, wantData: true,
			wantLines: []string{"EHLO localhost", "MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA",
				"Subject: hi", "", "body", ".", "QUIT"},
		},
		{
			name:     "MAIL refused",
			replies:  []string{"550 5.7.1 go away", "503 5.5.1 MAIL first", "503 5.5.1 MAIL first", "503 5.5.1 no recipients"},
			wantMail: 550, wantRcpt: []int{503, 503},
			wantLines: []string{"EHLO localhost", "MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA", "QUIT"},
		},
		{
			name:     "354 without a recipient ends the data at once",
			replies:  []string{"250 ok", "550 5.1.1 no", "550 5.1.1 no", "354 go on"},
			final:    "554 5.5.1 no valid recipients",
			wantRcpt: []int{550, 550},
			wantLines: []string{"EHLO localhost", "MAIL FROM:<a@x.test>", "RCPT TO:<b@y.test>", "RCPT TO:<c@y.test>", "DATA",
				".", "QUIT"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := pipeServer(t, tc.replies, tc.final)
			c, err := Dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			// A client that waited for each reply would wait for ever: the server
			// answers nothing before DATA.
			c.CommandTimeout = 5 * time.Second
			dc, rep := c.SendPipelined("a@x.test", nil, []string{"b@y.test", "c@y.test"}, nil)
			if code(rep.Mail) != tc.wantMail {
				t.Errorf("MAIL: %v", rep.Mail)
			}
			for i, want := range tc.wantRcpt {
				if code(rep.Rcpt[i]) != want {
					t.Errorf("RCPT %d: %v, want %d", i, rep.Rcpt[i], want)
				}
			}
			if (dc != nil) != tc.wantData {
				t.Fatalf("DataCommand %v, DATA reply %v", dc, rep.Data)
			}
			if dc != nil {
				if _, err := dc.Write([]byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
					t.Fatal(err)
				}
				if err := dc.Close(); err != nil {
					t.Fatal(err)
				}
			} else if rep.Data == nil {
				t.Fatal("no DataCommand and no DATA error")
			}
			c.Quit()
			if lines := <-got; strings.Join(lines, "\n") != strings.Join(tc.wantLines, "\n") {
				t.Errorf("server read:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.wantLines, "\n"))
			}
		})
	}
}

func TestSendPipelinedNeedsTheExtension(t *testing.T) {
	var fake faker
	fake.ReadWriter = struct {
		*strings.Reader
		*strings.Builder
	}{strings.NewReader("220 hi\r\n250 no extensions\r\n"), &strings.Builder{}}
	c := NewClient(fake)
	_, rep := c.SendPipelined("a@x.test", nil, []string{"b@y.test"}, nil)
	if rep.Mail == nil || rep.Data == nil || rep.Rcpt[0] == nil {
		t.Fatalf("pipelined without PIPELINING: %+v", rep)
	}
}

func code(err error) int {
	var se *SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	if err != nil {
		return -1
	}
	return 0
}
