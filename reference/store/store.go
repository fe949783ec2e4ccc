package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/internal/lazydir"
)

// Store is a directory of Maildirs. It is safe for concurrent use; deliveries to one
// mailbox are serialised so two copies of one message cannot both pass the duplicate
// check.
type Store struct {
	root  string
	clock clock.Clock
	host  string
	pid   int
	// sync makes a file or directory durable; tests replace it to see and fail it.
	sync func(f *os.File) error

	mu    sync.Mutex
	boxes map[string]*box
	made  *lazydir.Dir // root
}

// box is the in-memory state of one mailbox, loaded from disk on first use so the
// duplicate index survives a restart without a file of its own to keep consistent.
type box struct {
	name string
	dir  string

	mu     sync.Mutex
	loaded bool
	ready  bool              // tmp, new and cur exist and their entries are durable
	ids    map[string]string // Message-ID header -> message ID (file name)
	seq    uint64            // highest sequence number given out
}

// Delivery is what happened to a message in one mailbox.
type Delivery struct {
	Mailbox string
	// ID is the message's file name; for a duplicate, that of the copy already held.
	ID string
	// Path is where the new copy was stored; empty for a duplicate.
	Path      string
	Duplicate bool
}

// Message is one message of a mailbox as stored.
type Message struct {
	// ID is the Maildir file name without its info suffix (":2,...").
	ID   string
	Data []byte
	// Flags are the Maildir flags ("S", "RS", ...); empty for a message still in new.
	Flags string
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the time that names new messages (default: wall time).
func WithClock(c clock.Clock) Option { return func(s *Store) { s.clock = c } }

// hostEscaper spells "/" and ":", which Maildir forbids in the host part of a name.
var hostEscaper = strings.NewReplacer("/", `\057`, ":", `\072`)

// Open makes a store under root. Root and the mailboxes are created with their first
// delivery, so opening the stores of many servers writes nothing to disk.
func Open(root string, opts ...Option) (*Store, error) {
	if root == "" {
		return nil, errors.New("store: empty root directory")
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	s := &Store{
		root: root, clock: clock.Real{}, pid: os.Getpid(),
		host:  hostEscaper.Replace(host),
		sync:  (*os.File).Sync,
		boxes: map[string]*box{},
	}
	for _, o := range opts {
		o(s)
	}
	made, err := lazydir.Open(root, s.syncDir)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.made = made
	return s, nil
}

// Root is the directory holding the mailboxes.
func (s *Store) Root() string { return s.root }

// Deliver stores data in mailbox with returnPath as its Return-Path. It returns once the
// message is durable, or reports Duplicate when the mailbox already holds a message with
// the same Message-ID.
func (s *Store) Deliver(ctx context.Context, mailbox, returnPath string, data []byte) (Delivery, error) {
	ds, err := s.DeliverAll(ctx, []string{mailbox}, returnPath, data)
	if err != nil {
		return Delivery{}, err
	}
	return ds[0], nil
}

// DeliverAll stores one message in several mailboxes, all or none: a message accepted
// for many recipients in one SMTP transaction is answered once, so after a failure no
// copy may remain for the sender's retry to duplicate. A mailbox named twice gets one
// copy (the second is reported Duplicate) even without a Message-ID, as it is the same
// message. Deliveries are returned in the order of mailboxes.
func (s *Store) DeliverAll(ctx context.Context, mailboxes []string, returnPath string, data []byte) ([]Delivery, error) {
	return s.DeliverAllIn(ctx, "", mailboxes, returnPath, data)
}

// Junk is the folder of the Junk E-mail folder, as IMAP (reference/imapd) names its
// Maildir under a mailbox's directory.
const Junk = ".Junk E-mail"

// DeliverAllIn is DeliverAll into one folder of each mailbox: "" is the mailbox's
// own (INBOX), Junk its Junk E-mail folder (a Maildir++ sub-folder, ".Name"). A
// folder is its own Maildir, and so its own duplicate index.
func (s *Store) DeliverAllIn(ctx context.Context, folder string, mailboxes []string, returnPath string, data []byte) ([]Delivery, error) {
	if folder != "" && (!strings.HasPrefix(folder, ".") || folder == "." || folder == ".." || strings.ContainsAny(folder, "/\\\x00")) {
		return nil, fmt.Errorf("store: invalid folder %q", folder)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: deliver: %w", err)
	}
	if strings.ContainsAny(returnPath, "\r\n\x00") {
		return nil, fmt.Errorf("store: deliver: return path %q has a line break", returnPath)
	}
	boxes := make([]*box, len(mailboxes))
	for i, m := range mailboxes {
		b, err := s.boxIn(m, folder)
		if err != nil {
			return nil, err
		}
		boxes[i] = b
	}
	unlock := lockAll(boxes)
	defer unlock()
	for _, b := range boxes {
		if err := s.load(b); err != nil {
			return nil, err
		}
	}

	msgID := messageID(data)
	stored := prepare(returnPath, data)
	now := s.clock.Now()
	out := make([]Delivery, len(boxes))
	var placed []placement
	first := map[*box]int{}
	for i, b := range boxes {
		if j, ok := first[b]; ok {
			out[i] = Delivery{Mailbox: b.name, ID: out[j].ID, Duplicate: true}
			continue
		}
		first[b] = i
		if id, ok := s.holds(b, msgID); ok {
			out[i] = Delivery{Mailbox: b.name, ID: id, Duplicate: true}
			continue
		}
		if err := ctx.Err(); err != nil {
			s.rollback(placed)
			return nil, fmt.Errorf("store: deliver to %s: %w", b.name, err)
		}
		p, err := s.place(b, now, stored)
		if err != nil {
			s.rollback(placed)
			return nil, err
		}
		placed = append(placed, p)
		out[i] = Delivery{Mailbox: b.name, ID: p.id, Path: p.final}
	}
	// The renames are durable only once each new directory is; a mailbox gets at most
	// one copy per call, so that is one sync per placement.
	for _, p := range placed {
		if err := s.syncDir(filepath.Join(p.box.dir, "new")); err != nil {
			s.rollback(placed)
			return nil, fmt.Errorf("store: deliver to %s: %w", p.box.name, err)
		}
	}
	if msgID != "" {
		for _, p := range placed {
			p.box.ids[msgID] = p.id
		}
	}
	return out, nil
}

// placement is one copy renamed into new but not yet reported.
type placement struct {
	box        *box
	id         string
	tmp, final string
}

// place writes one copy to tmp, makes it durable and renames it into new.
func (s *Store) place(b *box, now time.Time, data []byte) (placement, error) {
	if err := s.prepareDirs(b); err != nil {
		return placement{}, err
	}
	b.seq++
	id := s.newID(now, b.seq)
	p := placement{box: b, id: id, tmp: filepath.Join(b.dir, "tmp", id), final: filepath.Join(b.dir, "new", id)}
	if err := s.writeFileSync(p.tmp, data); err != nil {
		_ = os.Remove(p.tmp)
		return placement{}, fmt.Errorf("store: deliver to %s: %w", b.name, err)
	}
	if err := os.Rename(p.tmp, p.final); err != nil {
		_ = os.Remove(p.tmp)
		return placement{}, fmt.Errorf("store: deliver to %s: %w", b.name, err)
	}
	return p, nil
}

// rollback removes copies of a failed delivery. It is best effort: a copy it cannot
// remove stays in the mailbox, which a retry then finds as a duplicate when the message
// has a Message-ID.
func (s *Store) rollback(placed []placement) {
	dirs := map[string]bool{}
	for _, p := range placed {
		_ = os.Remove(p.final)
		_ = os.Remove(p.tmp)
		dirs[filepath.Join(p.box.dir, "new")] = true
	}
	for d := range dirs {
		_ = s.syncDir(d)
	}
}

// Messages lists a mailbox's messages (new and cur) in delivery order. A mailbox that
// never received mail is empty.
func (s *Store) Messages(mailbox string) ([]Message, error) {
	name, err := boxName(mailbox)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, name)
	type item struct {
		Message
		file string
	}
	var items []item
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: mailbox %s: %w", name, err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			id, flags := splitInfo(e.Name())
			items = append(items, item{Message: Message{ID: id, Flags: flags}, file: filepath.Join(dir, sub, e.Name())})
		}
	}
	sort.Slice(items, func(i, j int) bool { return less(items[i].ID, items[j].ID) })
	out := make([]Message, 0, len(items))
	for _, it := range items {
		data, err := os.ReadFile(it.file)
		if errors.Is(err, os.ErrNotExist) {
			continue // expunged or moved to cur since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("store: mailbox %s: %w", name, err)
		}
		it.Data = data
		out = append(out, it.Message)
	}
	return out, nil
}

// boxName is the directory name of a mailbox: its address in lower case, which must be
// a single path element.
func boxName(mailbox string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(mailbox))
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("store: invalid mailbox name %q", mailbox)
	}
	return name, nil
}

// boxIn is a mailbox's folder ("" for INBOX); the box is named by the mailbox, as a
// Delivery reports it.
func (s *Store) boxIn(mailbox, folder string) (*box, error) {
	name, err := boxName(mailbox)
	if err != nil {
		return nil, err
	}
	key := name
	if folder != "" {
		key = name + "/" + folder
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.boxes[key]
	if !ok {
		b = &box{name: name, dir: filepath.Join(s.root, name, folder)}
		s.boxes[key] = b
	}
	return b, nil
}

// lockAll locks each distinct box once, in name order so concurrent deliveries to
// overlapping sets of mailboxes cannot deadlock.
func lockAll(boxes []*box) func() {
	uniq := map[*box]bool{}
	var order []*box
	for _, b := range boxes {
		if !uniq[b] {
			uniq[b] = true
			order = append(order, b)
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].dir < order[j].dir })
	for _, b := range order {
		b.mu.Lock()
	}
	return func() {
		for i := len(order) - 1; i >= 0; i-- {
			order[i].mu.Unlock()
		}
	}
}

// load rebuilds a mailbox's duplicate index and sequence from its files; b.mu is held.
func (s *Store) load(b *box) error {
	if b.loaded {
		return nil
	}
	ids := map[string]string{}
	var maxSeq uint64
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(b.dir, sub)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: mailbox %s: %w", b.name, err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			id, _ := splitInfo(e.Name())
			if seq, ok := seqOf(id); ok && seq > maxSeq {
				maxSeq = seq
			}
			mid, err := fileMessageID(filepath.Join(dir, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("store: mailbox %s: %w", b.name, err)
			}
			if mid != "" {
				ids[mid] = id
			}
		}
	}
	b.ids, b.seq, b.loaded = ids, maxSeq, true
	return nil
}

// holds reports the ID of the message with msgID the mailbox still holds. The index
// is checked against the files because a message may have been removed (expunged) since
// it was delivered, and then a new copy is no duplicate.
func (s *Store) holds(b *box, msgID string) (string, bool) {
	if msgID == "" {
		return "", false
	}
	id, ok := b.ids[msgID]
	if !ok {
		return "", false
	}
	if _, err := os.Stat(filepath.Join(b.dir, "new", id)); err == nil {
		return id, true
	}
	if ents, err := os.ReadDir(filepath.Join(b.dir, "cur")); err == nil {
		for _, e := range ents {
			if n, _ := splitInfo(e.Name()); n == id {
				return id, true
			}
		}
	}
	delete(b.ids, msgID)
	return "", false
}

// prepareDirs creates the mailbox's Maildir and makes its entries durable, so a message
// fsynced into new cannot vanish with a directory the crash did not keep.
func (s *Store) prepareDirs(b *box) error {
	if b.ready {
		return nil
	}
	if err := s.made.Make(); err != nil {
		return fmt.Errorf("store: mailbox %s: %w", b.name, err)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(b.dir, sub), 0o700); err != nil {
			return fmt.Errorf("store: mailbox %s: %w", b.name, err)
		}
	}
	// A folder's directory is new in its mailbox's, which is new in the root.
	dirs := []string{b.dir, s.root}
	if parent := filepath.Dir(b.dir); parent != s.root {
		dirs = []string{b.dir, parent, s.root}
	}
	for _, d := range dirs {
		if err := s.syncDir(d); err != nil {
			return fmt.Errorf("store: mailbox %s: %w", b.name, err)
		}
	}
	b.ready = true
	return nil
}

// nameRE matches the names newID makes and captures the sequence number.
var nameRE = regexp.MustCompile(`^\d+\.M\d+P\d+Q(\d+)R[0-9a-f]+\.`)

// newID makes a Maildir name "time.unique.host". The unique part carries the
// mailbox's sequence number (delivery order), the process and random bits (two
// processes sharing a root).
func (s *Store) newID(now time.Time, seq uint64) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%d.M%06dP%dQ%dR%x.%s", now.Unix(), now.Nanosecond()/1000, s.pid, seq, r, s.host)
}

// SortIDs puts Maildir IDs (file names without their info) in delivery order, the
// order Messages lists them in: names this store gave carry a per-mailbox sequence
// number, which orders messages even when the clock stands still; names from elsewhere
// (an IMAP APPEND, another program) follow, by name.
func SortIDs(ids []string) { sort.Slice(ids, func(i, j int) bool { return less(ids[i], ids[j]) }) }

func less(a, b string) bool {
	sa, oka := seqOf(a)
	sb, okb := seqOf(b)
	if oka != okb {
		return oka
	}
	if oka && sa != sb {
		return sa < sb
	}
	return a < b
}

func seqOf(id string) (uint64, bool) {
	m := nameRE.FindStringSubmatch(id)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// splitInfo splits a Maildir file name into its ID and, for ":2," info, its flags.
func splitInfo(name string) (id, flags string) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		return name, ""
	}
	id, info := name[:i], name[i+1:]
	if strings.HasPrefix(info, "2,") {
		flags = info[2:]
	}
	return id, flags
}

func (s *Store) writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := s.sync(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Store) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return s.sync(d)
}

// messageID is the Message-ID of a message, compared as is (ids are case-sensitive)
// but without surrounding whitespace; "" when there is none.
func messageID(data []byte) string {
	return headerMessageID(bufio.NewReader(bytes.NewReader(data)))
}

func fileMessageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// Bounded so a file without a header/body separator is not read whole.
	return headerMessageID(bufio.NewReader(io.LimitReader(f, 1<<20))), nil
}

// headerMessageID reads what header there is: a malformed header still yields the
// fields before the fault, and a message whose Message-ID cannot be read is simply
// never deduplicated.
func headerMessageID(r *bufio.Reader) string {
	h, _ := textproto.ReadHeader(r)
	return strings.TrimSpace(h.Get("Message-Id"))
}

// prepare puts "Return-Path: <returnPath>" on top of data and takes out any Return-Path
// already in its header (MBX-002). Everything else is copied byte for byte: go-message's
// header writer would re-terminate every field with CRLF, so the header is only read
// with it, and the fields are cut out here.
func prepare(returnPath string, data []byte) []byte {
	eol := "\r\n"
	if i := bytes.IndexByte(data, '\n'); i == 0 || i > 0 && data[i-1] != '\r' {
		eol = "\n" // the message's own line ending, so the file stays consistent
	}
	var out bytes.Buffer
	out.Grow(len(data) + len(returnPath) + 16)
	out.WriteString("Return-Path: <" + returnPath + ">" + eol)
	rest := data
	drop := false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		content := bytes.TrimRight(line, "\r\n")
		if len(content) == 0 {
			break // the blank line ending the header
		}
		if content[0] != ' ' && content[0] != '\t' {
			colon := bytes.IndexByte(content, ':')
			if colon < 0 {
				break // not a header field: the header has ended
			}
			drop = strings.EqualFold(string(bytes.TrimRight(content[:colon], " \t")), "Return-Path")
		}
		if !drop {
			out.Write(line)
		}
		rest = rest[len(line):]
	}
	out.Write(rest)
	return out.Bytes()
}
