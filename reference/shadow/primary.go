package shadow

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mailflow/mailflow/reference/internal/lazydir"
	"github.com/mailflow/mailflow/reference/smtpd"
)

// incarnationFile holds a spool's incarnation, beside the messages.
const incarnationFile = "incarnation"

// Primary answers shadows' questions about the messages a server holds.
type Primary struct {
	dir     string
	held    func() []string
	allowed []netip.Prefix

	mu  sync.Mutex
	inc string
}

// NewPrimary answers for the spool in dir; held lists the queue IDs the server holds
// now. Only clients in allowed are answered (the organisation's servers), every client
// when it is empty.
func NewPrimary(dir string, held func() []string, allowed []netip.Prefix) *Primary {
	return &Primary{dir: dir, held: held, allowed: allowed}
}

// Incarnation is the spool's incarnation, made with its first question when the spool
// has none: a spool that was lost takes its incarnation with it. It is read and made
// lazily so that opening a server writes nothing (a shadow asks before it relays, so
// the incarnation always predates what it is asked about).
func (p *Primary) Incarnation() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inc != "" {
		return p.inc, nil
	}
	path := filepath.Join(p.dir, incarnationFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(strings.TrimSpace(string(b))) > 0:
		p.inc = strings.TrimSpace(string(b))
		return p.inc, nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("incarnation: %w", err)
	}
	var r [12]byte
	_, _ = rand.Read(r[:])
	inc := hex.EncodeToString(r[:])
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return "", fmt.Errorf("incarnation: %w", err)
	}
	if err := lazydir.SyncDir(filepath.Dir(p.dir)); err != nil {
		return "", fmt.Errorf("incarnation: %w", err)
	}
	if err := lazydir.WriteFileSync(path, []byte(inc+"\n")); err != nil {
		return "", fmt.Errorf("incarnation: %w", err)
	}
	if err := lazydir.SyncDir(p.dir); err != nil {
		return "", fmt.Errorf("incarnation: %w", err)
	}
	p.inc = inc
	return inc, nil
}

// Answer is the reply to "XQDISCARD args" from remote.
func (p *Primary) Answer(remote netip.Addr, args string) (int, []string) {
	if !p.serves(remote) {
		return 0, nil
	}
	inc, err := p.Incarnation()
	if err != nil {
		return 451, []string{"4.3.0 " + err.Error()}
	}
	ids := strings.Fields(args)
	if len(ids) > maxIDs {
		return 501, []string{fmt.Sprintf("5.5.4 at most %d IDs per command", maxIDs)}
	}
	holds := map[string]bool{}
	for _, id := range p.held() {
		holds[root(id)] = true
	}
	a := Answer{Incarnation: inc, Done: map[string]bool{}}
	for _, id := range ids {
		if !holds[root(id)] {
			a.Done[id] = true
		}
	}
	return 250, formatAnswer(a, len(ids))
}

func (p *Primary) serves(a netip.Addr) bool {
	if len(p.allowed) == 0 {
		return true
	}
	for _, pr := range p.allowed {
		if pr.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// Extension is the primary's command for the servers of its receive connectors.
func (p *Primary) Extension() smtpd.Extension {
	return smtpd.Extension{Keyword: Keyword, Verb: Verb, Answer: p.Answer}
}
