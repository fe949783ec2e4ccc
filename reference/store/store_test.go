package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/store"
)

func open(t *testing.T, root string, opts ...store.Option) *store.Store {
	t.Helper()
	s, err := store.Open(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func messages(t *testing.T, s *store.Store, mailbox string) []store.Message {
	t.Helper()
	ms, err := s.Messages(mailbox)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestReturnPath(t *testing.T) {
	tests := []struct {
		name       string
		returnPath string
		in, want   string
	}{
		{
			name:       "added",
			returnPath: "sender@fabrikam.test",
			in:         "Received: from hub1\r\nFrom: a@fabrikam.test\r\nSubject: hi\r\n\r\nbody\r\n",
			want:       "Return-Path: <sender@fabrikam.test>\r\nReceived: from hub1\r\nFrom: a@fabrikam.test\r\nSubject: hi\r\n\r\nbody\r\n",
		},
		{
			name:       "replaced",
			returnPath: "sender@fabrikam.test",
			in:         "Return-Path: <forged@evil.test>\r\nReceived: from hub1\r\n\r\nbody\r\n",
			want:       "Return-Path: <sender@fabrikam.test>\r\nReceived: from hub1\r\n\r\nbody\r\n",
		},
		{
			name:       "every copy removed, folded and any case",
			returnPath: "s@x.test",
			in:         "Received: a\r\nreturn-path : <one@x.test>\r\nSubject: s\r\nRETURN-PATH:\r\n <two@x.test>\r\n\t(folded)\r\nTo: t@x.test\r\n\r\nb\r\n",
			want:       "Return-Path: <s@x.test>\r\nReceived: a\r\nSubject: s\r\nTo: t@x.test\r\n\r\nb\r\n",
		},
		{
			name:       "body untouched",
			returnPath: "s@x.test",
			in:         "Subject: s\r\n\r\nReturn-Path: <in-body@x.test>\r\n.\r\n\r\n  trailing  \r\n",
			want:       "Return-Path: <s@x.test>\r\nSubject: s\r\n\r\nReturn-Path: <in-body@x.test>\r\n.\r\n\r\n  trailing  \r\n",
		},
		{
			name:       "bare LF kept",
			returnPath: "s@x.test",
			in:         "Return-Path: <old@x.test>\nSubject: s\n\nbody\n",
			want:       "Return-Path: <s@x.test>\nSubject: s\n\nbody\n",
		},
		{
			name:       "null sender",
			returnPath: "",
			in:         "Subject: bounce\r\n\r\nx\r\n",
			want:       "Return-Path: <>\r\nSubject: bounce\r\n\r\nx\r\n",
		},
		{
			name:       "header only",
			returnPath: "s@x.test",
			in:         "Return-Path: <o@x.test>\r\nSubject: s\r\n",
			want:       "Return-Path: <s@x.test>\r\nSubject: s\r\n",
		},
		{
			name:       "8-bit body bytes",
			returnPath: "s@x.test",
			in:         "Subject: s\r\n\r\n\xff\xfe\x00bin\r\n",
			want:       "Return-Path: <s@x.test>\r\nSubject: s\r\n\r\n\xff\xfe\x00bin\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, t.TempDir())
			d, err := s.Deliver(context.Background(), "alice@contoso.test", tc.returnPath, []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if d.Duplicate || d.ID == "" || d.Mailbox != "alice@contoso.test" {
				t.Fatalf("delivery = %+v", d)
			}
			got, err := os.ReadFile(d.Path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("stored\n%q\nwant\n%q", got, tc.want)
			}
			ms := messages(t, s, "alice@contoso.test")
			if len(ms) != 1 || string(ms[0].Data) != tc.want || ms[0].ID != d.ID || ms[0].Flags != "" {
				t.Errorf("Messages = %+v", ms)
			}
		})
	}
}

func TestMaildirLayout(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	d, err := s.Deliver(context.Background(), "Alice@Contoso.TEST", "s@x.test", []byte("Subject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "alice@contoso.test", "new", d.ID); d.Path != want {
		t.Errorf("path %s, want %s", d.Path, want)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if fi, err := os.Stat(filepath.Join(root, "alice@contoso.test", sub)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "alice@contoso.test", "tmp")); len(ents) != 0 {
		t.Errorf("tmp not empty after delivery: %v", ents)
	}
	if ms := messages(t, s, "ALICE@contoso.test"); len(ms) != 1 {
		t.Errorf("mailbox names ignore case: got %d messages", len(ms))
	}
}

func TestDuplicateSuppression(t *testing.T) {
	const (
		mbox = "alice@contoso.test"
		msg  = "Message-ID: <m1@fabrikam.test>\r\nSubject: s\r\n\r\nbody\r\n"
	)
	tests := []struct {
		name     string
		mailbox  string
		second   string
		reopen   bool
		wantDup  bool
		wantHeld int
	}{
		{"same message", mbox, msg, false, true, 1},
		{"same message after reopen", mbox, msg, true, true, 1},
		{"surrounding whitespace ignored", mbox, "Subject: other\r\nMessage-Id:   <m1@fabrikam.test>  \r\n\r\nx\r\n", false, true, 1},
		{"folded id", mbox, "Message-ID:\r\n <m1@fabrikam.test>\r\n\r\nx\r\n", true, true, 1},
		{"id is case-sensitive", mbox, "Message-ID: <M1@fabrikam.test>\r\n\r\nx\r\n", false, false, 2},
		{"other id", mbox, "Message-ID: <m2@fabrikam.test>\r\n\r\nx\r\n", false, false, 2},
		{"other mailbox", "bob@contoso.test", msg, false, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := open(t, root)
			first, err := s.Deliver(context.Background(), mbox, "s@x.test", []byte(msg))
			if err != nil || first.Duplicate {
				t.Fatalf("first delivery: %+v, %v", first, err)
			}
			if tc.reopen {
				s = open(t, root)
			}
			d, err := s.Deliver(context.Background(), tc.mailbox, "s@x.test", []byte(tc.second))
			if err != nil {
				t.Fatal(err)
			}
			if d.Duplicate != tc.wantDup {
				t.Errorf("Duplicate = %v, want %v", d.Duplicate, tc.wantDup)
			}
			if tc.wantDup && (d.ID != first.ID || d.Path != "") {
				t.Errorf("duplicate delivery %+v should name the held copy %s", d, first.ID)
			}
			if got := len(messages(t, s, tc.mailbox)); got != tc.wantHeld {
				t.Errorf("%s holds %d messages, want %d", tc.mailbox, got, tc.wantHeld)
			}
		})
	}
}

func TestNoMessageIDNeverDeduplicated(t *testing.T) {
	root := t.TempDir()
	msg := []byte("Subject: no id\r\n\r\nbody\r\n")
	for i := 0; i < 2; i++ {
		s := open(t, root) // reopened too: the rebuilt index must not invent ids
		for j := 0; j < 2; j++ {
			d, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", msg)
			if err != nil {
				t.Fatal(err)
			}
			if d.Duplicate {
				t.Fatalf("round %d.%d: message without Message-ID suppressed", i, j)
			}
		}
	}
	if got := len(messages(t, open(t, root), "alice@contoso.test")); got != 4 {
		t.Errorf("held %d messages, want 4", got)
	}
}

// A copy removed from the mailbox (expunged) no longer makes a new one a duplicate.
func TestRedeliveryAfterRemoval(t *testing.T) {
	s := open(t, t.TempDir())
	msg := []byte("Message-ID: <gone@x.test>\r\n\r\nb\r\n")
	d, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.Path); err != nil {
		t.Fatal(err)
	}
	d2, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Duplicate {
		t.Error("redelivery after removal suppressed")
	}
}

// A message moved to cur with flags (as IMAP will) is still held.
func TestDuplicateOfMessageInCur(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	msg := []byte("Message-ID: <seen@x.test>\r\n\r\nb\r\n")
	d, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", msg)
	if err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(root, "alice@contoso.test", "cur", d.ID+":2,S")
	if err := os.Rename(d.Path, cur); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*store.Store{s, open(t, root)} {
		d2, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", msg)
		if err != nil {
			t.Fatal(err)
		}
		if !d2.Duplicate || d2.ID != d.ID {
			t.Errorf("delivery %+v, want duplicate of %s", d2, d.ID)
		}
	}
	ms := messages(t, s, "alice@contoso.test")
	if len(ms) != 1 || ms[0].ID != d.ID || ms[0].Flags != "S" {
		t.Errorf("Messages = %+v", ms)
	}
}

func TestDeliverAll(t *testing.T) {
	s := open(t, t.TempDir())
	// No Message-ID: a mailbox named twice in one delivery still gets one copy.
	ds, err := s.DeliverAll(context.Background(),
		[]string{"alice@contoso.test", "bob@contoso.test", "ALICE@contoso.test"}, "s@x.test", []byte("Subject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].Duplicate || ds[1].Duplicate || !ds[2].Duplicate || ds[2].ID != ds[0].ID {
		t.Errorf("deliveries = %+v", ds)
	}
	for mbox, want := range map[string]int{"alice@contoso.test": 1, "bob@contoso.test": 1} {
		if got := len(messages(t, s, mbox)); got != want {
			t.Errorf("%s holds %d, want %d", mbox, got, want)
		}
	}
}

type syncCall struct {
	path  string
	isDir bool
	// present tells whether the file being delivered was already in new at that moment.
	inNew bool
}

// The message file is made durable in tmp before it is renamed into new, and new is
// made durable after the rename, before Deliver returns.
func TestFsyncOrder(t *testing.T) {
	root := t.TempDir()
	newDir := filepath.Join(root, "alice@contoso.test", "new")
	var calls []syncCall
	s := open(t, root, store.WithSync(func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		ents, _ := os.ReadDir(newDir)
		calls = append(calls, syncCall{path: f.Name(), isDir: fi.IsDir(), inNew: len(ents) > 0})
		return f.Sync()
	}))
	d, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", []byte("Subject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	tmpFile := filepath.Join(root, "alice@contoso.test", "tmp", d.ID)
	fileAt, dirAt := -1, -1
	for i, c := range calls {
		switch {
		case c.path == tmpFile && !c.isDir:
			fileAt = i
			if c.inNew {
				t.Error("message file synced after it was renamed into new")
			}
		case c.path == newDir && c.isDir:
			dirAt = i
			if !c.inNew {
				t.Error("new synced before the rename")
			}
		}
	}
	if fileAt < 0 || dirAt < 0 || fileAt > dirAt {
		t.Errorf("sync calls %+v: want the tmp file, then %s", calls, newDir)
	}
	// The first delivery also makes the new mailbox's directories durable.
	for _, dir := range []string{root, filepath.Join(root, "alice@contoso.test")} {
		found := false
		for _, c := range calls {
			found = found || (c.isDir && c.path == dir)
		}
		if !found {
			t.Errorf("%s never synced", dir)
		}
	}
}

// A failed sync stores nothing in any mailbox of the delivery, and the error names the
// mailbox and the path.
func TestSyncFailureStoresNothing(t *testing.T) {
	boom := errors.New("injected I/O error")
	tests := []struct {
		name string
		// fail decides which sync fails.
		fail func(path string, isDir bool) bool
		// wantInErr are substrings the error must carry.
		wantInErr []string
	}{
		{
			name: "second message file",
			fail: func(p string, isDir bool) bool {
				return !isDir && strings.Contains(p, "bob@contoso.test")
			},
			wantInErr: []string{"bob@contoso.test", filepath.Join("bob@contoso.test", "tmp")},
		},
		{
			name: "second new directory",
			fail: func(p string, isDir bool) bool {
				return isDir && strings.HasSuffix(p, filepath.Join("bob@contoso.test", "new"))
			},
			wantInErr: []string{"bob@contoso.test", filepath.Join("bob@contoso.test", "new")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var mu sync.Mutex
			failing := true
			s := open(t, root, store.WithSync(func(f *os.File) error {
				fi, err := f.Stat()
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if failing && tc.fail(f.Name(), fi.IsDir()) {
					return &os.PathError{Op: "sync", Path: f.Name(), Err: boom}
				}
				return f.Sync()
			}))
			mboxes := []string{"alice@contoso.test", "bob@contoso.test"}
			msg := []byte("Message-ID: <x@y.test>\r\n\r\nb\r\n")
			_, err := s.DeliverAll(context.Background(), mboxes, "s@x.test", msg)
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want the injected error", err)
			}
			for _, want := range tc.wantInErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			for _, m := range mboxes {
				if got := messages(t, s, m); len(got) != 0 {
					t.Errorf("%s holds %d messages after a failed delivery", m, len(got))
				}
				if ents, _ := os.ReadDir(filepath.Join(root, m, "tmp")); len(ents) != 0 {
					t.Errorf("%s/tmp keeps %v", m, ents)
				}
			}
			// The failed attempt left no trace in the duplicate index: the retry stores.
			mu.Lock()
			failing = false
			mu.Unlock()
			ds, err := s.DeliverAll(context.Background(), mboxes, "s@x.test", msg)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Duplicate {
					t.Errorf("retry of a failed delivery suppressed: %+v", d)
				}
			}
		})
	}
}

func TestMessagesInDeliveryOrder(t *testing.T) {
	root := t.TempDir()
	// A clock that stands still: order must not depend on time moving.
	clk := clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	var want []string
	for round := 0; round < 2; round++ {
		s := open(t, root, store.WithClock(clk))
		for i := 0; i < 12; i++ {
			subject := fmt.Sprintf("m%d.%d", round, i)
			want = append(want, subject)
			if _, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", []byte("Subject: "+subject+"\r\n\r\nb\r\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	ms := messages(t, open(t, root), "alice@contoso.test")
	if len(ms) != len(want) {
		t.Fatalf("%d messages, want %d", len(ms), len(want))
	}
	for i, m := range ms {
		if !strings.Contains(string(m.Data), "Subject: "+want[i]+"\r\n") {
			t.Errorf("message %d is %q, want subject %s", i, m.Data, want[i])
		}
		if !strings.HasPrefix(m.ID, fmt.Sprint(clk.Now().Unix())+".") {
			t.Errorf("ID %s does not start with the delivery time", m.ID)
		}
	}
}

func TestMessagesOfEmptyMailbox(t *testing.T) {
	s := open(t, t.TempDir())
	if ms := messages(t, s, "nobody@contoso.test"); len(ms) != 0 {
		t.Errorf("Messages = %+v", ms)
	}
}

func TestInvalid(t *testing.T) {
	s := open(t, t.TempDir())
	for _, mbox := range []string{"", ".", "..", "../escape", "a/b@x.test", "a\\b@x.test"} {
		if _, err := s.Deliver(context.Background(), mbox, "s@x.test", []byte("x\r\n")); err == nil {
			t.Errorf("Deliver to %q succeeded", mbox)
		}
		if _, err := s.Messages(mbox); err == nil {
			t.Errorf("Messages of %q succeeded", mbox)
		}
	}
	if _, err := s.Deliver(context.Background(), "a@x.test", "s@x.test\r\nX-Injected: 1", []byte("x\r\n")); err == nil {
		t.Error("return path with a line break accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Deliver(ctx, "a@x.test", "s@x.test", []byte("x\r\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled delivery: %v", err)
	}
	if _, err := store.Open(""); err == nil {
		t.Error("Open with empty root succeeded")
	}
}

func TestConcurrentDuplicates(t *testing.T) {
	s := open(t, t.TempDir())
	msg := []byte("Message-ID: <race@x.test>\r\n\r\nb\r\n")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Overlapping mailbox sets in different orders exercise the lock ordering.
			mboxes := []string{"alice@contoso.test", "bob@contoso.test"}
			if i%2 == 1 {
				mboxes[0], mboxes[1] = mboxes[1], mboxes[0]
			}
			_, err := s.DeliverAll(context.Background(), mboxes, "s@x.test", msg)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"alice@contoso.test", "bob@contoso.test"} {
		if got := len(messages(t, s, m)); got != 1 {
			t.Errorf("%s holds %d copies, want 1", m, got)
		}
	}
}

func TestRootComesWithTheFirstDelivery(t *testing.T) {
	root := filepath.Join(t.TempDir(), "MBX1", "store")
	s := open(t, root)
	if got := messages(t, s, "alice@contoso.test"); len(got) != 0 {
		t.Fatalf("new store holds %d messages", len(got))
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("root made before any delivery: %v", err)
	}
	if _, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", []byte("Subject: s\r\n\r\nb\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := messages(t, open(t, root), "alice@contoso.test"); len(got) != 1 {
		t.Errorf("reopened store holds %d messages, want 1", len(got))
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(file); err == nil {
		t.Error("Open accepted a file as its root")
	}
}

// TestJunkFolder: a message delivered into the Junk E-mail folder is a Maildir of its
// own under the mailbox's directory, out of INBOX; a bad folder name is refused.
func TestJunkFolder(t *testing.T) {
	root := t.TempDir()
	s := open(t, root)
	ds, err := s.DeliverAllIn(context.Background(), store.Junk, []string{"alice@contoso.test"}, "s@x.test", []byte("Message-ID: <j@x.test>\r\nSubject: s\r\n\r\nb\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "alice@contoso.test", store.Junk, "new", ds[0].ID); ds[0].Path != want || ds[0].Mailbox != "alice@contoso.test" {
		t.Errorf("delivery %+v, want path %s in alice@contoso.test", ds[0], want)
	}
	if ms := messages(t, s, "alice@contoso.test"); len(ms) != 0 {
		t.Errorf("INBOX holds %d messages, want none", len(ms))
	}
	// INBOX keeps its own duplicate index: the same message delivered there is a copy.
	d, err := s.Deliver(context.Background(), "alice@contoso.test", "s@x.test", []byte("Message-ID: <j@x.test>\r\nSubject: s\r\n\r\nb\r\n"))
	if err != nil || d.Duplicate {
		t.Errorf("Deliver to INBOX = %+v, %v", d, err)
	}
	for _, bad := range []string{"Junk", "..", ".a/b"} {
		if _, err := s.DeliverAllIn(context.Background(), bad, []string{"alice@contoso.test"}, "", []byte("x\r\n")); err == nil {
			t.Errorf("folder %q accepted", bad)
		}
	}
}
