package mailbox

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// quotaOf is a mailbox's size limit in bytes from the scenario (MBX-009); 0 is none.
func (s *Server) quotaOf(mailbox string) int64 {
	if s.cfg.Scenario == nil {
		return 0
	}
	r, ok := s.cfg.Scenario.Recipient(mailbox)
	if !ok {
		return 0
	}
	return r.Quota
}

// usage is what a mailbox holds, every folder's messages together, in bytes.
func (s *Server) usage(mailbox string) (int64, error) {
	if s.root == "" {
		return 0, nil
	}
	var n int64
	err := filepath.WalkDir(filepath.Join(s.root, mailbox), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // a file renamed or removed while counting
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// overQuota says whether size more bytes would take mailbox over its quota.
func (s *Server) overQuota(mailbox string, size int64) bool {
	q := s.quotaOf(mailbox)
	if q <= 0 {
		return false
	}
	used, err := s.usage(mailbox)
	if err != nil {
		s.log.Warn("mailbox size unknown: quota not checked", "mailbox", mailbox, "err", err)
		return false
	}
	return used+size > q
}
