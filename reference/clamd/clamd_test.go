package clamd_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/reference/clamd"
)

// daemon is one real clamd for the package's tests (started by TestMain), or nil
// when none is installed.
var daemon *clamdaemon.Daemon

func TestMain(m *testing.M) {
	clamdaemon.RunTests(m, "clamd", func(d *clamdaemon.Daemon) { daemon = d })
}

func client(t *testing.T, opts ...clamd.Option) *clamd.Client {
	t.Helper()
	if daemon == nil {
		t.Skip(clamdaemon.ErrNotInstalled)
	}
	return clamd.New(daemon.Addr(), opts...)
}

// message is a multipart/mixed message with a text part and an attachment, its body
// in the given transfer encoding.
func message(cte, body string) []byte {
	switch cte {
	case "base64":
		enc := base64.StdEncoding.EncodeToString([]byte(body))
		var b strings.Builder
		for len(enc) > 20 { // short lines, so the encoded file spans several
			b.WriteString(enc[:20] + "\r\n")
			enc = enc[20:]
		}
		body = b.String() + enc
	}
	return []byte("From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nThe file you asked for.\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"eicar.com\"\r\n" +
		"Content-Transfer-Encoding: " + cte + "\r\n\r\n" + body + "\r\n--b1--\r\n")
}

func TestScan(t *testing.T) {
	const sig = "eicar.com.UNOFFICIAL"
	for _, tt := range []struct {
		name  string
		data  []byte
		chunk int
		want  clamd.Verdict
	}{
		{"the EICAR file itself", []byte(clamdaemon.EICAR), 0, clamd.Verdict{Infected: true, Signature: sig}},
		{"EICAR in a base64 MIME part", message("base64", clamdaemon.EICAR), 0, clamd.Verdict{Infected: true, Signature: sig}},
		{"EICAR across 5-byte chunks", message("base64", clamdaemon.EICAR), 5, clamd.Verdict{Infected: true, Signature: sig}},
		{"a clean message", message("base64", "a harmless file"), 0, clamd.Verdict{}},
		{"EICAR with a byte changed", message("base64", strings.Replace(clamdaemon.EICAR, "TEST", "TEXT", 1)), 0, clamd.Verdict{}},
		{"nothing at all", nil, 0, clamd.Verdict{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []clamd.Option
			if tt.chunk > 0 {
				opts = append(opts, clamd.WithChunkSize(tt.chunk))
			}
			got, err := client(t, opts...).Scan(context.Background(), tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Scan = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPing(t *testing.T) {
	if err := client(t).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestUnreachable: a daemon that is not there is an error naming clamd and its
// address, never a verdict.
func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gone.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	for _, addr := range []string{"unix:" + sock, "tcp:" + closed} {
		_, err := clamd.New(addr, clamd.WithTimeout(2*time.Second)).Scan(context.Background(), []byte(clamdaemon.EICAR))
		if err == nil || !strings.Contains(err.Error(), "clamd at "+addr) {
			t.Errorf("Scan on %s: err = %v, want one naming clamd at %s", addr, err, addr)
		}
	}
}

// TestSilentDaemon: a daemon that takes the stream and never answers ends at the
// deadline with an error.
func TestSilentDaemon(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Takes the stream and holds the connection open, silent, until the client
		// gives up and closes it.
		_, _ = io.Copy(io.Discard, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := clamd.New("tcp:"+l.Addr().String()).Scan(ctx, []byte("x")); err == nil {
		t.Fatal("Scan of a silent daemon returned no error")
	}
}

// TestErrorReply: a daemon that answers ERROR (a stream over its StreamMaxLength,
// memory it could not get) gives ErrScan and no verdict.
func TestErrorReply(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("INSTREAM size limit exceeded. ERROR\x00"))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	for _, size := range []int{10, 4 << 20} {
		v, err := clamd.New("tcp:"+l.Addr().String()).Scan(context.Background(), make([]byte, size))
		if !errors.Is(err, clamd.ErrScan) || v != (clamd.Verdict{}) {
			t.Errorf("Scan of %d bytes = %+v, %v; want ErrScan", size, v, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		reply   string
		want    clamd.Verdict
		wantErr string
	}{
		{"stream: OK", clamd.Verdict{}, ""},
		{"stream: OK\x00", clamd.Verdict{}, ""},
		{"stream: OK\n", clamd.Verdict{}, ""},
		{"stream: eicar.com.UNOFFICIAL FOUND", clamd.Verdict{Infected: true, Signature: "eicar.com.UNOFFICIAL"}, ""},
		{"/tmp/a: b: Win.Test.EICAR_HDB-1 FOUND", clamd.Verdict{Infected: true, Signature: "Win.Test.EICAR_HDB-1"}, ""},
		{"INSTREAM size limit exceeded. ERROR", clamd.Verdict{}, "scan failed: INSTREAM size limit exceeded."},
		{"stream: Can't allocate memory ERROR", clamd.Verdict{}, "scan failed"},
		{"stream:  FOUND", clamd.Verdict{}, "unexpected reply"},
		{"stream: two words FOUND", clamd.Verdict{}, "unexpected reply"},
		{"stream: MAYBE", clamd.Verdict{}, "unexpected reply"},
		{"PONG", clamd.Verdict{}, "unexpected reply"},
		{"", clamd.Verdict{}, "unexpected reply"},
	} {
		got, err := clamd.Parse(tt.reply)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.reply, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("Parse(%q): err = %v, want one saying %q", tt.reply, err, tt.wantErr)
		case got != tt.want:
			t.Errorf("Parse(%q) = %+v, want %+v", tt.reply, got, tt.want)
		}
	}
}

// FuzzParse: any reply is a verdict or an error, never both; a verdict of infected
// names a signature, and one that is not names none.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"stream: OK", "stream: eicar.com.UNOFFICIAL FOUND", "INSTREAM size limit exceeded. ERROR",
		"/a: b: X FOUND", "stream: FOUND", ": OK", "stream: OK\x00", "stream: a\x00b FOUND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		v, err := clamd.Parse(reply)
		if err != nil {
			if v != (clamd.Verdict{}) {
				t.Fatalf("Parse(%q) = %+v with error %v", reply, v, err)
			}
			return
		}
		if v.Infected != (v.Signature != "") || strings.ContainsAny(v.Signature, " \x00") {
			t.Fatalf("Parse(%q) = %+v", reply, v)
		}
		if v.Infected && !strings.Contains(reply, v.Signature+" FOUND") {
			t.Fatalf("Parse(%q) = %+v: the signature is not in the reply", reply, v)
		}
	})
}
