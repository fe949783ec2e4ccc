package imapd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailflow/mailflow/reference/store"
)

// folderSpec is one of the folders every mailbox has.
type folderSpec struct {
	name string // as IMAP names it
	dir  string // Maildir under the mailbox's directory; "" is the mailbox's own (INBOX)
	use  imap.MailboxAttr
}

// folders are an Exchange mailbox's default folders, in LIST order.
var folders = []folderSpec{
	{name: "INBOX"},
	{name: "Sent Items", dir: ".Sent Items", use: imap.MailboxAttrSent},
	{name: "Drafts", dir: ".Drafts", use: imap.MailboxAttrDrafts},
	{name: "Deleted Items", dir: ".Deleted Items", use: imap.MailboxAttrTrash},
	{name: "Junk E-mail", dir: ".Junk E-mail", use: imap.MailboxAttrJunk},
	{name: "Outbox", dir: ".Outbox"},
}

// delim separates folder levels; the folders are all top level.
const delim = '/'

func lookupFolder(name string) (folderSpec, bool) {
	for _, f := range folders {
		if strings.EqualFold(f.name, name) && (f.name == "INBOX" || f.name == name) {
			return f, true
		}
	}
	return folderSpec{}, false
}

// maildirFlags pairs Maildir's info letters with IMAP's system flags. The letters are
// listed in ASCII order, the order Maildir writes them in.
var maildirFlags = []struct {
	letter byte
	flag   imap.Flag
}{
	{'D', imap.FlagDraft},
	{'F', imap.FlagFlagged},
	{'R', imap.FlagAnswered},
	{'S', imap.FlagSeen},
	{'T', imap.FlagDeleted},
}

// permanentFlags are the flags a message keeps: Maildir has letters for these alone.
var permanentFlags = func() []imap.Flag {
	var out []imap.Flag
	for _, m := range maildirFlags {
		out = append(out, m.flag)
	}
	return out
}()

func toIMAP(letters string) []imap.Flag {
	out := []imap.Flag{}
	for _, m := range maildirFlags {
		if strings.IndexByte(letters, m.letter) >= 0 {
			out = append(out, m.flag)
		}
	}
	return out
}

// applyFlags changes Maildir letters as STORE asks. Letters IMAP has no flag for (P,
// "passed") are kept; keywords have no letter and are not kept.
func applyFlags(letters string, st *imap.StoreFlags) string {
	set := map[byte]bool{}
	for i := 0; i < len(letters); i++ {
		set[letters[i]] = true
	}
	for _, m := range maildirFlags {
		has := false
		for _, f := range st.Flags {
			if strings.EqualFold(string(f), string(m.flag)) {
				has = true
			}
		}
		switch st.Op {
		case imap.StoreFlagsSet:
			set[m.letter] = has
		case imap.StoreFlagsAdd:
			if has {
				set[m.letter] = true
			}
		case imap.StoreFlagsDel:
			if has {
				set[m.letter] = false
			}
		}
	}
	var out []byte
	for l, ok := range set {
		if ok {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return string(out)
}

func lettersOf(flags []imap.Flag) string {
	return applyFlags("", &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: flags})
}

// message is one message of a folder as this server knows it.
type message struct {
	uid   imap.UID
	id    string // Maildir ID: the file name without ":2,..."
	sub   string // "new" or "cur"
	flags string // Maildir letters, sorted
}

func (m *message) file() string {
	if m.sub == "new" {
		return filepath.Join("new", m.id)
	}
	return filepath.Join("cur", m.id+":2,"+m.flags)
}

func (m *message) has(letter byte) bool { return strings.IndexByte(m.flags, letter) >= 0 }

// folder is one Maildir as every session sees it: its messages with their UIDs and the
// tracker that tells each session of changes (new mail, flags, expunges). All renames
// and removals of its files by this server happen under mu.
type folder struct {
	spec    folderSpec
	mailbox string
	dir     string
	srv     *Server

	mu       sync.Mutex
	loaded   bool
	validity uint32
	next     uint32
	msgs     []*message // ascending UID; a message's sequence number is its index + 1
	tracker  *imapserver.MailboxTracker

	// selected and idling count the sessions that have the folder selected, and
	// those of them in IDLE: who hears of new mail at once (MBX-012).
	selected, idling atomic.Int32
}

// refresh brings the folder in line with its Maildir: files gone are expunged, files
// new get UIDs (saved before any session sees them), renamed files carry their flags.
// f.mu is held.
func (f *folder) refresh() error {
	onDisk, order, err := f.scan()
	if err != nil {
		return err
	}
	changed := false
	if !f.loaded {
		l, err := f.readList()
		now := f.srv.clock.Now().Unix()
		if err != nil {
			// RFC 3501 §2.3.1.1: UIDs that did not persist need a UIDVALIDITY greater
			// than before. The lost one was a time no later than now on either clock.
			f.srv.log.Warn("uid list unreadable: the folder gets a new UIDVALIDITY", "dir", f.dir, "err", err)
			l, now = uidList{}, max(now, time.Now().Unix())+1
		}
		if l.validity == 0 {
			l = uidList{validity: uint32(now), next: 1}
			changed = true
		}
		f.validity, f.next = l.validity, l.next
		for _, e := range l.uids {
			if _, ok := onDisk[e.id]; ok {
				f.msgs = append(f.msgs, &message{uid: imap.UID(e.uid), id: e.id})
			} else {
				changed = true
			}
		}
	} else {
		for i := len(f.msgs) - 1; i >= 0; i-- {
			if _, ok := onDisk[f.msgs[i].id]; !ok {
				f.msgs = append(f.msgs[:i], f.msgs[i+1:]...)
				f.tracker.QueueExpunge(uint32(i) + 1)
				changed = true
			}
		}
	}
	known := make(map[string]bool, len(f.msgs))
	for i, m := range f.msgs {
		known[m.id] = true
		st := onDisk[m.id]
		if f.loaded && st.flags != m.flags {
			f.tracker.QueueMessageFlags(uint32(i)+1, m.uid, toIMAP(st.flags), nil)
		}
		m.sub, m.flags = st.sub, st.flags
	}
	added := 0
	for _, id := range order {
		if known[id] {
			continue
		}
		if f.next == 0 {
			return fmt.Errorf("imapd: %s: UIDs exhausted", f.dir)
		}
		st := onDisk[id]
		f.msgs = append(f.msgs, &message{uid: imap.UID(f.next), id: id, sub: st.sub, flags: st.flags})
		f.next++
		added++
		changed = true
	}
	if changed {
		if err := f.writeList(); err != nil {
			// Without the list on disk the UIDs just given could be given again to
			// other messages after a restart: no session may see them.
			if !f.loaded {
				f.msgs, f.validity, f.next = nil, 0, 0 // read it all again next time
			} else {
				f.msgs = f.msgs[:len(f.msgs)-added]
				f.next -= uint32(added)
			}
			return err
		}
	}
	if !f.loaded {
		f.tracker = imapserver.NewMailboxTracker(uint32(len(f.msgs)))
		f.loaded = true
	} else if added > 0 {
		f.tracker.QueueNumMessages(uint32(len(f.msgs)))
	}
	return nil
}

type fileState struct{ sub, flags string }

// scan lists the Maildir's messages, and the IDs in the store's delivery order.
func (f *folder) scan() (map[string]fileState, []string, error) {
	out := map[string]fileState{}
	var ids []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(f.dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("imapd: %w", err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			id, info, _ := strings.Cut(e.Name(), ":")
			if !validID(id) {
				continue
			}
			flags, _ := strings.CutPrefix(info, "2,")
			if _, dup := out[id]; dup {
				continue // caught between new and cur by another reader's rename
			}
			out[id] = fileState{sub: sub, flags: flags}
			ids = append(ids, id)
		}
	}
	store.SortIDs(ids)
	return out, ids, nil
}

func (f *folder) readList() (uidList, error) {
	data, err := os.ReadFile(filepath.Join(f.dir, uidListName))
	if errors.Is(err, os.ErrNotExist) {
		return uidList{}, nil
	}
	if err != nil {
		return uidList{}, err
	}
	return parseUIDList(data)
}

// writeList replaces the UID list atomically (write, fsync, rename, fsync the
// directory), so a crash leaves the old list or the new one, never half of one. An
// empty folder that has no directory yet keeps its list in memory.
func (f *folder) writeList() error {
	if _, err := os.Stat(f.dir); errors.Is(err, os.ErrNotExist) && len(f.msgs) == 0 {
		return nil
	}
	l := uidList{validity: f.validity, next: f.next}
	for _, m := range f.msgs {
		l.uids = append(l.uids, uidEntry{uint32(m.uid), m.id})
	}
	if err := f.srv.writeFileAtomic(f.dir, uidListName, l.format()); err != nil {
		return fmt.Errorf("imapd: %s: uid list: %w", f.dir, err)
	}
	return nil
}

// setFlags renames a message's file to carry letters, into cur as readers expect once
// its flags were looked at. f.mu is held.
func (f *folder) setFlags(m *message, letters string) error {
	if m.sub == "cur" && m.flags == letters {
		return nil
	}
	from := filepath.Join(f.dir, m.file())
	to := &message{id: m.id, sub: "cur", flags: letters}
	if err := os.Rename(from, filepath.Join(f.dir, to.file())); err != nil {
		return fmt.Errorf("imapd: flags of %s: %w", m.id, err)
	}
	old := m.sub
	m.sub, m.flags = to.sub, to.flags
	if err := f.srv.syncDir(filepath.Join(f.dir, "cur")); err != nil {
		return err
	}
	if old == "new" {
		return f.srv.syncDir(filepath.Join(f.dir, "new"))
	}
	return nil
}

// add stores a message in the folder with flags and date (APPEND, COPY, MOVE) the way
// delivery does, tmp then cur, each step durable, and returns its UID. The file is
// durable before the UID is given, so what a client was told is stored is stored.
func (f *folder) add(data []byte, letters string, date time.Time) (imap.UID, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(f.dir, sub), 0o700); err != nil {
			return 0, fmt.Errorf("imapd: %w", err)
		}
	}
	for _, d := range []string{f.dir, filepath.Dir(f.dir)} {
		if err := f.srv.syncDir(d); err != nil {
			return 0, err
		}
	}
	id := f.srv.newID()
	tmp := filepath.Join(f.dir, "tmp", id)
	if err := f.srv.writeFileSync(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("imapd: %w", err)
	}
	if !date.IsZero() {
		_ = os.Chtimes(tmp, date, date)
	}
	m := &message{id: id, sub: "cur", flags: letters}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.Rename(tmp, filepath.Join(f.dir, m.file())); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("imapd: %w", err)
	}
	if err := f.srv.syncDir(filepath.Join(f.dir, "cur")); err != nil {
		_ = os.Remove(filepath.Join(f.dir, m.file()))
		return 0, err
	}
	if err := f.refresh(); err != nil {
		// The client is told NO, so the copy must not turn up later with a UID.
		_ = os.Remove(filepath.Join(f.dir, m.file()))
		_ = f.srv.syncDir(filepath.Join(f.dir, "cur"))
		return 0, err
	}
	for _, mm := range f.msgs {
		if mm.id == id {
			if f.srv.onAdd != nil {
				f.srv.onAdd(f.mailbox, f.spec.name)
			}
			return mm.uid, nil
		}
	}
	return 0, fmt.Errorf("imapd: appended message %s vanished", id)
}

// remove deletes messages (given by server sequence number, ascending) and tells every
// session. f.mu is held.
func (f *folder) remove(seqs []uint32) error {
	var errs []error
	for i := len(seqs) - 1; i >= 0; i-- {
		m := f.msgs[seqs[i]-1]
		if err := os.Remove(filepath.Join(f.dir, m.file())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		f.msgs = append(f.msgs[:seqs[i]-1], f.msgs[seqs[i]:]...)
		f.tracker.QueueExpunge(seqs[i])
	}
	for _, sub := range []string{"new", "cur"} {
		if err := f.srv.syncDir(filepath.Join(f.dir, sub)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := f.writeList(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("imapd: expunge: %w", err)
	}
	return nil
}

// read returns a message's bytes and date. Another session may rename the file (new
// flags) between the caller's look and the read, so a vanished file is looked for
// again once under the lock.
func (f *folder) read(m *message) ([]byte, time.Time, error) {
	f.mu.Lock()
	path := filepath.Join(f.dir, m.file())
	f.mu.Unlock()
	data, t, err := readFile(path)
	if errors.Is(err, os.ErrNotExist) {
		f.mu.Lock()
		path = filepath.Join(f.dir, m.file())
		f.mu.Unlock()
		data, t, err = readFile(path)
	}
	return data, t, err
}

func readFile(path string) ([]byte, time.Time, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(fh, data); err != nil {
		return nil, time.Time{}, err
	}
	return data, st.ModTime(), nil
}

// idCounter makes IDs this process gives unique within a second.
var idCounter struct {
	sync.Mutex
	n uint64
}

// newID makes a Maildir name in the store's form, with this server's own counter, so
// the store's order puts appended messages after those delivered before them only by
// time (the counter is not the store's).
func (s *Server) newID() string {
	idCounter.Lock()
	idCounter.n++
	n := idCounter.n
	idCounter.Unlock()
	var r [4]byte
	_, _ = rand.Read(r[:])
	now := s.clock.Now()
	return fmt.Sprintf("%d.M%06dP%dA%dR%x.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), n, r, s.host)
}
