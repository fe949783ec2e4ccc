package smtp

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

// dotBoth writes data, cut into pieces at cuts, through textproto's dot writer alone and
// through dotRuns over one, closes both, and returns what each wrote.
func dotBoth(t testing.TB, data []byte, cuts []int) (want, got []byte) {
	var wb, gb bytes.Buffer
	tw := textproto.NewWriter(bufio.NewWriter(&wb))
	dw := tw.DotWriter()
	if _, err := dw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	gw := textproto.NewWriter(bufio.NewWriter(&gb))
	gd := gw.DotWriter()
	r := newDotRuns(gw.W, gd)
	rest := data
	for _, c := range cuts {
		if c > len(rest) {
			c = len(rest)
		}
		if n, err := r.Write(rest[:c]); err != nil || n != c {
			t.Fatalf("Write = %d, %v; want %d", n, err, c)
		}
		rest = rest[c:]
	}
	if n, err := r.Write(rest); err != nil || n != len(rest) {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(rest))
	}
	if err := gd.Close(); err != nil {
		t.Fatal(err)
	}
	return wb.Bytes(), gb.Bytes()
}

func TestDotRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		cuts []int
	}{
		{"empty", "", nil},
		{"CRLF lines", "Subject: hi\r\n\r\nhello\r\n", nil},
		{"leading dots", ".hidden\r\n..two\r\n.\r\nend", nil},
		{"bare LF", "a\nb\n.c\n", nil},
		{"bare CR", "a\rb\r\r\nc\r", nil},
		{"CR CR LF", "x\r\r\n.y", nil},
		{"cut inside CRLF", "one\r\n.two\r\n", []int{4, 1}},
		{"cut before a dot", "one\r\n.two\r\n", []int{5}},
		{"octet by octet", "a.b\r\n.c\nd\r.e", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"no final CRLF", "last line", nil},
		{"long line", strings.Repeat("x", 5000) + "\r\n." + strings.Repeat("y", 5000), []int{4097}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, got := dotBoth(t, []byte(tc.data), tc.cuts)
			if !bytes.Equal(got, want) {
				t.Errorf("wrote %q, textproto writes %q", got, want)
			}
		})
	}
}

// FuzzDotRuns holds dotRuns to textproto's dot writer: the same octets for any data,
// written in two pieces cut anywhere.
func FuzzDotRuns(f *testing.F) {
	for _, s := range []string{"", "a\r\n.b\r\n", ".\r\n", "\r\r\n.", "\n.\n.", "x\ry\r"} {
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		c := 0
		if len(data) > 0 {
			c = int(cut) % (len(data) + 1)
		}
		want, got := dotBoth(t, data, []int{c})
		if !bytes.Equal(got, want) {
			t.Fatalf("data %q cut at %d: wrote %q, textproto writes %q", data, c, got, want)
		}
	})
}

// BenchmarkDotRuns writes a 100 KB message of 78-octet lines through each writer.
func BenchmarkDotRuns(b *testing.B) {
	line := strings.Repeat("m", 76) + "\r\n"
	msg := []byte(strings.Repeat(line, 100*1024/len(line)))
	for _, tc := range []struct {
		name string
		runs bool
	}{{"textproto", false}, {"runs", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			w := textproto.NewWriter(bufio.NewWriter(discard{}))
			for i := 0; i < b.N; i++ {
				dw := w.DotWriter()
				var err error
				if tc.runs {
					_, err = newDotRuns(w.W, dw).Write(msg)
				} else {
					_, err = dw.Write(msg)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := dw.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
