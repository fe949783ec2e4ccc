package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailflow/mailflow/clock"
)

// Authenticator checks a login and names the mailbox (the store's name for it, the
// primary address) it opens. A refused login is an error wrapping ErrAuthFailed; any
// other error means the check could not be made.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (mailbox string, err error)
}

// ErrAuthFailed is a refused user name or password.
var ErrAuthFailed = errors.New("imapd: authentication failed")

// DefaultAppendLimit bounds a message a client may APPEND, as the Mailbox server's
// receive size limit bounds one delivered.
const DefaultAppendLimit = 36 << 20

// Server is a running IMAP service over a directory of Maildirs.
type Server struct {
	root  string
	auth  Authenticator
	tls   *tls.Config
	clock clock.Clock
	log   *slog.Logger
	limit uint32
	host  string
	// sync makes a file or directory durable; tests replace it to see and fail it.
	sync func(*os.File) error

	srv *imapserver.Server
	l   net.Listener
	// ctx bounds logins' directory lookups, so Close does not wait on them.
	ctx    context.Context
	cancel context.CancelFunc
	// sessions counts sessions not yet closed, so Close returns only when no session
	// can touch the Maildirs any more; a session starts only while closing is false,
	// both under mu, so none is added once Close waits.
	sessions sync.WaitGroup
	closing  bool
	done     chan struct{}
	once     sync.Once

	// onAdd hears of each message stored in a folder by a client or the server.
	onAdd func(mailbox, folder string)

	mu      sync.Mutex
	folders map[string]*folder // mailbox + "\x00" + folder name
}

// Option configures a Server.
type Option func(*Server)

// WithTLS offers STARTTLS with cfg; without it no login is ever accepted.
func WithTLS(cfg *tls.Config) Option { return func(s *Server) { s.tls = cfg } }

// WithClock sets the time that dates appended messages and UIDVALIDITY.
func WithClock(c clock.Clock) Option { return func(s *Server) { s.clock = c } }

func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithOnAdd calls f after a message is stored in a mailbox's folder (APPEND, COPY,
// MOVE, Move), so the Mailbox server hears of what a client puts in the Outbox. f must
// not block.
func WithOnAdd(f func(mailbox, folder string)) Option { return func(s *Server) { s.onAdd = f } }

// WithAppendLimit bounds an APPENDed message (DefaultAppendLimit); a larger literal is
// refused with NO [TOOBIG] before the client sends it.
func WithAppendLimit(n uint32) Option { return func(s *Server) { s.limit = n } }

// Start listens on addr ("ip:port") and serves the Maildirs under root, one per
// mailbox, ROOT/<mailbox>.
func Start(ctx context.Context, addr, root string, auth Authenticator, opts ...Option) (*Server, error) {
	if root == "" {
		return nil, errors.New("imapd: no Maildir root")
	}
	if auth == nil {
		return nil, errors.New("imapd: no authenticator")
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	s := &Server{
		root: root, auth: auth, clock: clock.Real{}, log: slog.Default(), limit: DefaultAppendLimit,
		host: strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host),
		sync: (*os.File).Sync, done: make(chan struct{}),
		folders: map[string]*folder{},
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {},
			imap.CapSpecialUse: {}, imap.CapListExtended: {},
		},
		Logger:    logAdapter{s.log},
		TLSConfig: s.tls,
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("imapd: %w", err)
	}
	s.l = l
	go func() {
		defer close(s.done)
		err := s.srv.Serve(l)
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if err != nil && !closing {
			s.log.Error("imap server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the listening "ip:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// Notice is what Notify told: the INBOX's message count (EXISTS), the sessions that
// had it selected and how many of them were in IDLE. Selected is 0 when nobody was
// told anything.
type Notice struct {
	Exists           uint32
	Selected, Idling int
}

// Notify tells the sessions that have mailbox's INBOX open of a delivery, so a client
// in IDLE hears EXISTS at once (MBX-012). A folder nobody opened yet is read when one
// does.
func (s *Server) Notify(mailbox string) Notice {
	s.mu.Lock()
	f := s.folders[strings.ToLower(mailbox)+"\x00INBOX"]
	s.mu.Unlock()
	if f == nil {
		return Notice{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		return Notice{}
	}
	if err := f.refresh(); err != nil {
		s.log.Warn("new mail not announced", "mailbox", mailbox, "err", err)
		return Notice{}
	}
	return Notice{Exists: uint32(len(f.msgs)), Selected: int(f.selected.Load()), Idling: int(f.idling.Load())}
}

// Close stops the listener, ends every session and waits for them.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.cancel()
		// The listener is closed here, and the library's Close called only once Serve
		// has returned: go-imap v2.0.0-beta.8's Serve registers a listener and then adds
		// to the WaitGroup its Close waits on, so a Close between the two races (and a
		// listener closed before Serve ran would never be closed by the library).
		_ = s.l.Close()
		<-s.done
		// Ends the sessions; one that starts after this finds closing set and says BYE.
		err = s.srv.Close()
		s.sessions.Wait()
	})
	return err
}

// folder is a mailbox's folder, shared by every session that opens it.
func (s *Server) folder(mailbox string, spec folderSpec) *folder {
	key := mailbox + "\x00" + spec.name
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folders[key]
	if !ok {
		f = &folder{spec: spec, mailbox: mailbox, dir: filepath.Join(s.root, mailbox, spec.dir), srv: s}
		s.folders[key] = f
	}
	return f
}

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "shutting down"}
	}
	s.sessions.Add(1)
	return &session{srv: s, conn: c}, nil, nil
}

func (s *Server) writeFileSync(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := s.sync(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// writeFileAtomic replaces dir/name with data: a crash leaves the old file or the new.
func (s *Server) writeFileAtomic(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name+"."+s.newID())
	if err := s.writeFileSync(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return s.syncDir(dir)
}

func (s *Server) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := s.sync(d); err != nil {
		return fmt.Errorf("imapd: sync %s: %w", dir, err)
	}
	return nil
}

// logAdapter gives the library's Printf-style logger slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, args ...any) {
	a.l.Info("imap: " + fmt.Sprintf(format, args...))
}

// loginTimeout bounds the directory's answer to a login.
const loginTimeout = 10 * time.Second
