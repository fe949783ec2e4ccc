package imapd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Stored is one message of a folder, as the Mailbox server reads it.
type Stored struct {
	// ID names the message in its folder (its Maildir name) for Move.
	ID   string
	Data []byte
}

// Mailboxes lists the mailboxes that have a Maildir under the root, so the Mailbox
// server can look at every Outbox after a restart.
func (s *Server) Mailboxes() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("imapd: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && validID(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Messages are a mailbox folder's messages, oldest first: what the Mailbox server's
// submission service takes from the Outbox (MBX-006).
func (s *Server) Messages(mailbox, name string) ([]Stored, error) {
	f, err := s.serverFolder(mailbox, name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	err = f.refresh()
	ms := append([]*message(nil), f.msgs...)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, m := range ms {
		data, _, err := f.read(m)
		if errors.Is(err, os.ErrNotExist) {
			continue // moved or expunged meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Stored{ID: m.id, Data: data})
	}
	return out, nil
}

// Move moves a message between a mailbox's folders as a client's MOVE does, the copy
// durable before the original goes and every session told, and marks it \Seen: the
// Mailbox server files a message the Hub took in Sent Items this way (MBX-006). With
// data, the copy is data instead of the original's bytes (what was sent, its Date: and
// Message-ID: completed).
func (s *Server) Move(mailbox, id, from, to string, data []byte) error {
	src, err := s.serverFolder(mailbox, from)
	if err != nil {
		return err
	}
	dest, err := s.serverFolder(mailbox, to)
	if err != nil {
		return err
	}
	src.mu.Lock()
	err = src.refresh()
	var m *message
	for _, mm := range src.msgs {
		if mm.id == id {
			m = mm
		}
	}
	src.mu.Unlock()
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("imapd: %s has no message %s in %s: %w", mailbox, id, from, os.ErrNotExist)
	}
	orig, date, err := src.read(m)
	if err != nil {
		return err
	}
	if data == nil {
		data = orig
	}
	src.mu.Lock()
	letters := m.flags
	src.mu.Unlock()
	if !strings.ContainsRune(letters, 'S') {
		letters = lettersOf(append(toIMAP(letters), "\\Seen"))
	}
	if _, err := dest.add(data, letters, date); err != nil {
		return err
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	for i, mm := range src.msgs {
		if mm == m {
			return src.remove([]uint32{uint32(i) + 1})
		}
	}
	return nil // gone meanwhile: a client expunged it
}

func (s *Server) serverFolder(mailbox, name string) (*folder, error) {
	mailbox = strings.ToLower(mailbox)
	if !validID(mailbox) {
		return nil, fmt.Errorf("imapd: bad mailbox name %q", mailbox)
	}
	spec, ok := lookupFolder(name)
	if !ok {
		return nil, fmt.Errorf("imapd: no folder %q", name)
	}
	if _, err := os.Stat(filepath.Join(s.root, mailbox)); err != nil {
		return nil, fmt.Errorf("imapd: mailbox %s: %w", mailbox, err)
	}
	return s.folder(mailbox, spec), nil
}
