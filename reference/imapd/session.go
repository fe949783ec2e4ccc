package imapd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// session is one client's connection: who logged in and which folder is selected.
// The library calls its methods one at a time.
type session struct {
	srv  *Server
	conn *imapserver.Conn

	mailbox   string // the logged-in user's mailbox; "" before login
	sel       *folder
	view      *imapserver.SessionTracker
	readOnly  bool
	searchRes imap.UIDSet
	closed    bool
}

var _ imapserver.SessionMove = (*session)(nil)
var _ imapserver.SessionAppendLimit = (*session)(nil)

func (ss *session) Close() error {
	if ss.closed {
		return nil
	}
	ss.closed = true
	ss.unselect()
	ss.srv.sessions.Done()
	return nil
}

func (ss *session) AppendLimit() uint32 { return ss.srv.limit }

func (ss *session) Login(user, password string) error {
	ctx, cancel := context.WithTimeout(ss.srv.ctx, loginTimeout)
	defer cancel()
	mbox, err := ss.srv.auth.Authenticate(ctx, user, password)
	switch {
	case errors.Is(err, ErrAuthFailed):
		ss.srv.log.Info("imap login refused", "user", user, "err", err)
		return imapserver.ErrAuthFailed
	case err != nil:
		ss.srv.log.Warn("imap login not checked", "user", user, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Cannot check credentials now, try again later"}
	}
	mbox = strings.ToLower(mbox)
	if !validID(mbox) {
		return fmt.Errorf("imapd: bad mailbox name %q for %s", mbox, user)
	}
	ss.mailbox = mbox
	return nil
}

func noSuchFolder(name string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: fmt.Sprintf("No folder %q", name)}
}

func (ss *session) folder(name string) (*folder, error) {
	spec, ok := lookupFolder(name)
	if !ok {
		return nil, noSuchFolder(name)
	}
	return ss.srv.folder(ss.mailbox, spec), nil
}

// open is the folder with its Maildir read; f.mu is held on success.
func (ss *session) open(name string) (*folder, error) {
	f, err := ss.folder(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	if err := f.refresh(); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	return f, nil
}

func (ss *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	f, err := ss.open(name)
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	ss.unselect()
	ss.sel, ss.view, ss.readOnly = f, f.tracker.NewSession(), options != nil && options.ReadOnly
	f.selected.Add(1)
	var firstUnseen uint32
	for i, m := range f.msgs {
		if !m.has('S') {
			firstUnseen = uint32(i) + 1
			break
		}
	}
	return &imap.SelectData{
		Flags:             permanentFlags,
		PermanentFlags:    permanentFlags,
		NumMessages:       uint32(len(f.msgs)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(f.next),
		UIDValidity:       f.validity,
	}, nil
}

func (ss *session) unselect() {
	if ss.view != nil {
		ss.view.Close()
	}
	if ss.sel != nil {
		ss.sel.selected.Add(-1)
	}
	ss.sel, ss.view, ss.searchRes = nil, nil, nil
}

func (ss *session) Unselect() error {
	ss.unselect()
	return nil
}

// The folders are the mailbox's fixed set, as Exchange's default folders cannot be
// removed or renamed; user folders are not offered.
func fixedFolders() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Folders are fixed on this server"}
}

func (ss *session) Create(name string, _ *imap.CreateOptions) error {
	if _, ok := lookupFolder(name); ok {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Folder exists"}
	}
	return fixedFolders()
}

func (ss *session) Delete(string) error                              { return fixedFolders() }
func (ss *session) Rename(string, string, *imap.RenameOptions) error { return fixedFolders() }

// Every folder counts as subscribed, so subscribing is accepted and changes nothing.
func (ss *session) Subscribe(name string) error {
	_, err := ss.folder(name)
	return err
}

func (ss *session) Unsubscribe(name string) error { return ss.Subscribe(name) }

func (ss *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	for _, spec := range folders {
		if !slices.ContainsFunc(patterns, func(p string) bool { return imapserver.MatchList(spec.name, delim, ref, p) }) {
			continue
		}
		if options.SelectSpecialUse && spec.use == "" {
			continue
		}
		data := imap.ListData{Mailbox: spec.name, Delim: delim, Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}}
		if options.SelectSubscribed || options.ReturnSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		// RFC 6154 §5.1 lets a server send the special-use attributes in every LIST,
		// which clients that never ask (RETURN (SPECIAL-USE)) rely on.
		if spec.use != "" {
			data.Attrs = append(data.Attrs, spec.use)
		}
		if options.ReturnStatus != nil {
			st, err := ss.Status(spec.name, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, err := ss.open(name)
	if err != nil {
		return nil, err
	}
	defer f.mu.Unlock()
	data := &imap.StatusData{Mailbox: f.spec.name, UIDNext: imap.UID(f.next), UIDValidity: f.validity}
	count := func(letter byte) *uint32 {
		var n uint32
		for _, m := range f.msgs {
			if m.has(letter) {
				n++
			}
		}
		return &n
	}
	if options.NumMessages {
		n := uint32(len(f.msgs))
		data.NumMessages = &n
	}
	if options.NumUnseen {
		n := uint32(len(f.msgs)) - *count('S')
		data.NumUnseen = &n
	}
	if options.NumDeleted {
		data.NumDeleted = count('T')
	}
	if options.NumRecent {
		var n uint32
		data.NumRecent = &n
	}
	return data, nil
}

// Append stores the message only once the whole literal has arrived: a client gone
// mid-literal leaves nothing behind, and OK [APPENDUID] is sent only for a stored copy.
func (ss *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	f, err := ss.folder(name)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: fmt.Sprintf("No folder %q", name)}
	}
	var buf bytes.Buffer
	buf.Grow(int(min(r.Size(), int64(ss.srv.limit))))
	if _, err := io.Copy(&buf, io.LimitReader(r, int64(ss.srv.limit)+1)); err != nil {
		return nil, fmt.Errorf("imapd: append: %w", err)
	}
	if int64(buf.Len()) != r.Size() {
		return nil, fmt.Errorf("imapd: append: literal of %d bytes ended after %d", r.Size(), buf.Len())
	}
	date := options.Time
	if date.IsZero() {
		date = ss.srv.clock.Now()
	}
	uid, err := f.add(buf.Bytes(), lettersOf(options.Flags), date)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	validity := f.validity
	f.mu.Unlock()
	return &imap.AppendData{UIDValidity: validity, UID: uid}, nil
}

func (ss *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if ss.sel == nil {
		return nil
	}
	f := ss.sel
	f.mu.Lock()
	err := f.refresh()
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return ss.view.Poll(w, allowExpunge)
}

func (ss *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if ss.sel == nil {
		<-stop
		return nil
	}
	if err := ss.Poll(w, true); err != nil {
		return err
	}
	ss.sel.idling.Add(1)
	defer ss.sel.idling.Add(-1)
	return ss.view.Idle(w, stop)
}

func readOnly() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Folder is read-only (EXAMINE)"}
}

func (ss *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if ss.readOnly {
		return readOnly()
	}
	f := ss.sel
	f.mu.Lock()
	defer f.mu.Unlock()
	var seqs []uint32
	for i, m := range f.msgs {
		if m.has('T') && (uids == nil || uids.Contains(m.uid)) {
			seqs = append(seqs, uint32(i)+1)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	return f.remove(seqs)
}

// each calls fn for the selected folder's messages in numSet, with their server
// sequence numbers; f.mu is held.
func (ss *session) each(numSet imap.NumSet, fn func(seq uint32, m *message) error) error {
	f := ss.sel
	numSet = ss.static(numSet)
	for i, m := range f.msgs {
		seq := uint32(i) + 1
		var in bool
		switch set := numSet.(type) {
		case imap.SeqSet:
			c := ss.view.EncodeSeqNum(seq)
			in = c != 0 && set.Contains(c)
		case imap.UIDSet:
			in = set.Contains(m.uid)
		}
		if !in {
			continue
		}
		if err := fn(seq, m); err != nil {
			return err
		}
	}
	return nil
}

// static resolves "*" and "$" (SEARCHRES) against the folder as this session sees it.
func (ss *session) static(numSet imap.NumSet) imap.NumSet {
	if imap.IsSearchRes(numSet) {
		return ss.searchRes
	}
	f := ss.sel
	switch set := numSet.(type) {
	case imap.SeqSet:
		last := uint32(len(f.msgs))
		for i := range set {
			staticRange(&set[i].Start, &set[i].Stop, last)
		}
	case imap.UIDSet:
		var last uint32
		if n := len(f.msgs); n > 0 {
			last = uint32(f.msgs[n-1].uid)
		}
		for i := range set {
			staticRange((*uint32)(&set[i].Start), (*uint32)(&set[i].Stop), last)
		}
	}
	return numSet
}

func staticRange(start, stop *uint32, last uint32) {
	dyn := false
	if *start == 0 {
		*start, dyn = last, true
	}
	if *stop == 0 {
		*stop, dyn = last, true
	}
	if dyn && *start > *stop {
		*start, *stop = *stop, *start
	}
}

type fetchItem struct {
	seq   uint32
	m     *message
	flags []imap.Flag
}

// Fetch reads files outside the folder's lock, so a slow client holds up no delivery
// and no other session.
func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	markSeen := !ss.readOnly && slices.ContainsFunc(options.BodySection, func(bs *imap.FetchItemBodySection) bool { return !bs.Peek })
	f := ss.sel
	var items []fetchItem
	f.mu.Lock()
	err := ss.each(numSet, func(seq uint32, m *message) error {
		if markSeen && !m.has('S') {
			if err := f.setFlags(m, applyFlags(m.flags, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}})); err != nil {
				return err
			}
			f.tracker.QueueMessageFlags(seq, m.uid, toIMAP(m.flags), ss.view)
		}
		items = append(items, fetchItem{seq: seq, m: m, flags: toIMAP(m.flags)})
		return nil
	})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := ss.fetchOne(w, f, it, options); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) fetchOne(w *imapserver.FetchWriter, f *folder, it fetchItem, options *imap.FetchOptions) error {
	seq := ss.view.EncodeSeqNum(it.seq)
	if seq == 0 {
		return nil
	}
	var data []byte
	var date time.Time
	needData := options.RFC822Size || options.Envelope || options.BodyStructure != nil || options.InternalDate ||
		len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	if needData {
		var err error
		if data, date, err = f.read(it.m); err != nil {
			// Expunged by another session since the look: the client learns of it from
			// the EXPUNGE that follows.
			ss.srv.log.Info("message vanished before FETCH", "id", it.m.id, "err", err)
			return nil
		}
	}
	rw := w.CreateMessage(seq)
	rw.WriteUID(it.m.uid)
	if options.Flags {
		rw.WriteFlags(it.flags)
	}
	if options.InternalDate {
		rw.WriteInternalDate(date)
	}
	if options.RFC822Size {
		rw.WriteRFC822Size(int64(len(data)))
	}
	if options.Envelope {
		rw.WriteEnvelope(envelope(data))
	}
	if options.BodyStructure != nil {
		rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(data)))
	}
	for _, bs := range options.BodySection {
		buf := imapserver.ExtractBodySection(bytes.NewReader(data), bs)
		if err := writeLiteral(rw.WriteBodySection(bs, int64(len(buf))), buf); err != nil {
			return err
		}
	}
	for _, bs := range options.BinarySection {
		buf := imapserver.ExtractBinarySection(bytes.NewReader(data), bs)
		if err := writeLiteral(rw.WriteBinarySection(bs, int64(len(buf))), buf); err != nil {
			return err
		}
	}
	for _, bss := range options.BinarySectionSize {
		rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(data), bss))
	}
	return rw.Close()
}

func writeLiteral(wc io.WriteCloser, buf []byte) error {
	_, werr := wc.Write(buf)
	cerr := wc.Close()
	return errors.Join(werr, cerr)
}

func (ss *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	if ss.readOnly {
		return readOnly()
	}
	f := ss.sel
	f.mu.Lock()
	err := ss.each(numSet, func(seq uint32, m *message) error {
		if err := f.setFlags(m, applyFlags(m.flags, flags)); err != nil {
			return err
		}
		f.tracker.QueueMessageFlags(seq, m.uid, toIMAP(m.flags), ss.view)
		return nil
	})
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if !flags.Silent {
		return ss.Fetch(w, numSet, &imap.FetchOptions{Flags: true})
	}
	return nil
}

// copyTo stores a copy of each message in numSet in dest and returns the server
// sequence numbers copied, for MOVE to expunge.
func (ss *session) copyTo(numSet imap.NumSet, destName string) (*imap.CopyData, []*message, error) {
	dest, err := ss.folder(destName)
	if err != nil {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: fmt.Sprintf("No folder %q", destName)}
	}
	if dest == ss.sel {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Source and destination are the same folder"}
	}
	f := ss.sel
	var ms []*message
	f.mu.Lock()
	_ = ss.each(numSet, func(_ uint32, m *message) error { ms = append(ms, m); return nil })
	f.mu.Unlock()
	data := &imap.CopyData{}
	var done []*message
	for _, m := range ms {
		body, date, err := f.read(m)
		if errors.Is(err, os.ErrNotExist) {
			continue // expunged meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		f.mu.Lock()
		letters := m.flags
		f.mu.Unlock()
		uid, err := dest.add(body, letters, date)
		if err != nil {
			return nil, nil, err
		}
		data.SourceUIDs.AddNum(m.uid)
		data.DestUIDs.AddNum(uid)
		done = append(done, m)
	}
	dest.mu.Lock()
	data.UIDValidity = dest.validity
	dest.mu.Unlock()
	return data, done, nil
}

func (ss *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, _, err := ss.copyTo(numSet, dest)
	return data, err
}

// Move copies, then expunges the originals; the library writes the EXPUNGEs the
// tracker queues before the tagged OK (RFC 6851 §3.3).
func (ss *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if ss.readOnly {
		return readOnly()
	}
	data, moved, err := ss.copyTo(numSet, dest)
	if err != nil {
		return err
	}
	f := ss.sel
	f.mu.Lock()
	var seqs []uint32
	for i, m := range f.msgs {
		if slices.Contains(moved, m) {
			seqs = append(seqs, uint32(i)+1)
		}
	}
	err = f.remove(seqs)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	// Written outside the lock so a slow client holds up no delivery; the EXPUNGEs the
	// tracker queued still follow it, at the poll before the tagged OK.
	return w.WriteCopyData(data)
}

func (ss *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	f := ss.sel
	f.mu.Lock()
	ss.staticCriteria(criteria)
	type cand struct {
		seq   uint32
		m     *message
		flags string
	}
	var cands []cand
	for i, m := range f.msgs {
		cands = append(cands, cand{ss.view.EncodeSeqNum(uint32(i) + 1), m, m.flags})
	}
	f.mu.Unlock()
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
	)
	for _, c := range cands {
		sm := &searchMsg{uid: c.m.uid, flags: toIMAP(c.flags), load: func() ([]byte, time.Time) {
			b, t, _ := f.read(c.m)
			return b, t
		}}
		if !sm.match(c.seq, criteria) {
			continue
		}
		uidSet.AddNum(c.m.uid)
		var num uint32
		switch kind {
		case imapserver.NumKindSeq:
			if c.seq == 0 {
				continue
			}
			seqSet.AddNum(c.seq)
			num = c.seq
		case imapserver.NumKindUID:
			num = uint32(c.m.uid)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindSeq {
		data.All = seqSet
	} else {
		data.All = uidSet
	}
	if options.ReturnSave {
		ss.searchRes = uidSet
	}
	return &data, nil
}

func (ss *session) staticCriteria(c *imap.SearchCriteria) {
	seqs := make([]imap.SeqSet, 0, len(c.SeqNum))
	for _, s := range c.SeqNum {
		switch set := ss.static(s).(type) {
		case imap.SeqSet:
			seqs = append(seqs, set)
		case imap.UIDSet:
			c.UID = append(c.UID, set)
		}
	}
	c.SeqNum = seqs
	for i, u := range c.UID {
		c.UID[i] = ss.static(u).(imap.UIDSet)
	}
	for i := range c.Not {
		ss.staticCriteria(&c.Not[i])
	}
	for i := range c.Or {
		ss.staticCriteria(&c.Or[i][0])
		ss.staticCriteria(&c.Or[i][1])
	}
}
