package mailbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/imapd"
)

// Authenticator checks a user's password; *directory.Client is one, binding as the
// user's entry, so the password is checked where it is kept (hashed, in the directory).
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) error
}

// startIMAP serves the store's Maildirs over IMAP, logins checked by the directory.
func (s *Server) startIMAP(ctx context.Context) error {
	root := s.cfg.StoreDir
	if r, ok := s.store.(interface{ Root() string }); ok {
		root = r.Root()
	}
	if root == "" {
		s.log.Info("store without a Maildir root: no IMAP service")
		return nil
	}
	auth, _ := s.cfg.Directory.(Authenticator)
	if auth == nil {
		s.log.Warn("directory cannot check passwords: every IMAP login will be refused")
	}
	opts := []imapd.Option{imapd.WithLogger(s.log), imapd.WithClock(s.cfg.Clock), imapd.WithOnAdd(s.kickOutbox)}
	if s.cfg.ServerTLS != nil {
		opts = append(opts, imapd.WithTLS(s.cfg.ServerTLS))
	}
	addr := net.JoinHostPort(s.cfg.Addr.String(), strconv.Itoa(s.cfg.IMAPPort))
	srv, err := imapd.Start(ctx, addr, root, imapAuth{s, auth}, opts...)
	if err != nil {
		return err
	}
	s.imap = srv
	return nil
}

// imapAuth opens a mailbox for a login: the password checked by the directory, and
// the mailbox one this server holds.
type imapAuth struct {
	s    *Server
	auth Authenticator
}

func (a imapAuth) Authenticate(ctx context.Context, user, password string) (string, error) {
	if a.auth == nil {
		return "", fmt.Errorf("%w: no password check configured", imapd.ErrAuthFailed)
	}
	err := a.auth.Authenticate(ctx, user, password)
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return "", fmt.Errorf("%w: %w", imapd.ErrAuthFailed, err)
	case err != nil:
		return "", err
	}
	e, err := a.s.cfg.Directory.Lookup(ctx, user)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return "", fmt.Errorf("%w: %s not in the directory", imapd.ErrAuthFailed, user)
	case err != nil:
		return "", err
	case e.Type != directory.TypeMailbox:
		return "", fmt.Errorf("%w: %s has no mailbox", imapd.ErrAuthFailed, user)
	case !strings.EqualFold(e.MailboxServer, a.s.name):
		// Reaching a mailbox on another server is Client Access's job (MBX-011).
		return "", fmt.Errorf("%w: %s's mailbox is on %s", imapd.ErrAuthFailed, user, e.MailboxServer)
	}
	if e.Mail == "" {
		return strings.ToLower(user), nil
	}
	return strings.ToLower(e.Mail), nil
}
