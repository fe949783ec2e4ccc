package queue

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkSpoolPut measures the cost of making one 10 KiB message durable (two
// fsynced files and a directory fsync): the floor under every 250 after DATA.
func BenchmarkSpoolPut(b *testing.B) {
	sp, err := OpenSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 160)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := &Message{ID: NewID(time.Now()), From: "a@x.test", Recipients: []Recipient{{Addr: "b@y.test", State: Pending}}}
		if err := sp.Put(m, data); err != nil {
			b.Fatal(err)
		}
	}
}
