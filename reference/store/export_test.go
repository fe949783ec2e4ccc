package store

import "os"

// WithSync replaces fsync so tests can watch and fail it.
func WithSync(f func(*os.File) error) Option { return func(s *Store) { s.sync = f } }
