package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// Spare directories. Making and removing files and directories can be
// most of what a short job costs: on ext4 without a journal (a virtual
// machine's disk, often) the allocator of a new inode passes over every
// inode freed in the last minutes, reading its record, so that a run of
// a thousand short jobs slows down as it goes. A job's temporary
// directory and its workspace are therefore not removed when the job
// ends, as long as they are as the executor made them: they are emptied
// (the control files only truncated) and moved under <RunDir>/spare, and
// the next job that starts takes them over with one rename each. Close
// removes what is left.

// spareKind tells a job's two directories apart.
type spareKind int

const (
	spareTemp spareKind = iota // a temporary directory with its control files
	spareWork                  // an empty workspace
)

// maxSpare bounds the spare directories of a kind kept for a run: as many
// as jobs end at once, in the steady state.
const maxSpare = 64

// spareSeq names spare directories apart, across the executors of a run.
var spareSeq atomic.Uint64

// spareDirs are the spare directories of an executor, by run and kind.
type spareDirs struct {
	mu   sync.Mutex
	dirs map[spareKey][]string
	// off tells that the file system of the runs cannot rename without
	// replacing: directories are removed as they were before.
	off bool
}

type spareKey struct {
	runDir string
	kind   spareKind
}

// take moves a spare directory of kind to dst, which must not exist, and
// reports whether it did; if it did not, dst is for the caller to make.
func (s *spareDirs) take(runDir string, kind spareKind, dst string) bool {
	key := spareKey{runDir, kind}
	s.mu.Lock()
	list := s.dirs[key]
	if len(list) == 0 {
		s.mu.Unlock()
		return false
	}
	dir := list[len(list)-1]
	s.dirs[key] = list[:len(list)-1]
	s.mu.Unlock()
	if err := renameNew(dir, dst); err != nil {
		_ = removeTree(dir)
		return false
	}
	return true
}

// give empties dir, a directory of kind that a job ended with, and keeps
// it for a later job under runDir/spare if it is still as the executor
// made it: a directory of this user with mode dirPerm, holding nothing
// once emptied but the files named in keep, which are truncated and must
// be plain files of this user with mode filePerm and one link. Anything
// else in it is removed. A directory that cannot be kept is removed;
// only its removal can fail.
func (s *spareDirs) give(runDir string, kind spareKind, dir string, dirPerm, filePerm os.FileMode, keep []string) error {
	key := spareKey{runDir, kind}
	s.mu.Lock()
	off := s.off || len(s.dirs[key]) >= maxSpare
	s.mu.Unlock()
	if off || !s.keeps(dir, dirPerm, filePerm, keep) {
		return removeDir(dir)
	}
	root := filepath.Join(runDir, "spare")
	spare := filepath.Join(root, strconv.FormatUint(spareSeq.Add(1), 10))
	err := renameNew(dir, spare)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.Mkdir(root, 0o700); err == nil || errors.Is(err, os.ErrExist) {
			err = renameNew(dir, spare)
		}
	}
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			s.mu.Lock()
			s.off = true
			s.mu.Unlock()
		}
		return removeDir(dir)
	}
	s.mu.Lock()
	if s.dirs == nil {
		s.dirs = map[spareKey][]string{}
	}
	s.dirs[key] = append(s.dirs[key], spare)
	s.mu.Unlock()
	return nil
}

// keeps empties dir as give describes, and reports whether it may be
// kept.
func (s *spareDirs) keeps(dir string, dirPerm, filePerm os.FileMode, keep []string) bool {
	if !ownDir(dir, dirPerm) {
		return false
	}
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil && err != io.EOF {
		return false
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if !slices.Contains(keep, name) || !ownFile(p, filePerm) {
			if removeTree(p) != nil {
				return false
			}
		}
	}
	return true
}

// ownDir reports whether dir is a directory of this user with mode perm.
func ownDir(dir string, perm os.FileMode) bool {
	info, err := os.Lstat(dir)
	return err == nil && info.IsDir() && info.Mode().Perm() == perm && ownedOnce(info)
}

// ownFile reports whether p is a plain file of this user with mode perm
// and one link, and empties it. It truncates what it opened without
// following a link, and checked again once open: a process the step left
// (one beyond reach) cannot swap a link to another file in.
func ownFile(p string, perm os.FileMode) bool {
	info, err := os.Lstat(p)
	if err != nil || !ownPlain(info, perm) {
		return false
	}
	if info.Size() == 0 {
		return true
	}
	f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	open, err := f.Stat()
	return err == nil && os.SameFile(info, open) && ownPlain(open, perm) && f.Truncate(0) == nil
}

// ownPlain reports whether info is of a plain file of this user with
// mode perm and one link.
func ownPlain(info os.FileInfo, perm os.FileMode) bool {
	return info.Mode().IsRegular() && info.Mode().Perm() == perm && ownedOnce(info)
}

// ownedOnce reports whether info is of a file of this user with one
// link (a directory: any number).
func ownedOnce(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid() && (info.IsDir() || st.Nlink == 1)
}

// remove removes every spare directory, and runDir/spare for each run.
func (s *spareDirs) remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	runs := map[string]bool{}
	for key, list := range s.dirs {
		runs[key.runDir] = true
		for _, dir := range list {
			if err := removeDir(dir); err != nil {
				errs = append(errs, fmt.Errorf("remove spare directory: %w", err))
			}
		}
	}
	for runDir := range runs {
		_ = os.Remove(filepath.Join(runDir, "spare"))
	}
	s.dirs = nil
	return errors.Join(errs...)
}
