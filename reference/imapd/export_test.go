package imapd

import "os"

// WithSync replaces fsync so tests can fail it.
func WithSync(f func(*os.File) error) Option { return func(s *Server) { s.sync = f } }
